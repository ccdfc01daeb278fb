import { describe, expect, it } from 'vitest';
import type { DirectoryPrincipal } from '../../identity/principal-of.js';
import { accountOf } from './provider.js';

const person = (emails: DirectoryPrincipal['emails']): DirectoryPrincipal => ({
  kind: 'user',
  id: 'u-1',
  userName: 'ivan@contoso.example',
  active: true,
  groups: [{ id: 'g-1', name: 'Readers' }],
  attributes: {},
  emails,
  displayName: 'Ivan',
  givenName: null,
  familyName: null,
  externalId: null,
  amr: [],
  authTime: null,
  signInRisk: 'none',
});

describe('the OpenID claims of a directory user', () => {
  it.each([
    ['an address an admin typed', [{ value: 'ivan@contoso.example', primary: true }]],
    ['a SCIM address (SCIM carries no verification)', [{ value: 'ivan@contoso.example', type: 'work' }]],
    [
      'a SCIM address whose client claims it verified',
      [
        {
          value: 'ivan@contoso.example',
          primary: true,
          verified: true,
        } as DirectoryPrincipal['emails'][number],
      ],
    ],
  ])('never says email_verified for %s', async (_what, emails) => {
    const claims = await accountOf(person(emails)).claims('id_token', 'openid email', {}, []);
    expect(claims).toMatchObject({ email: 'ivan@contoso.example', email_verified: false });
  });

  it('leaves both claims out when there is no address', async () => {
    const claims = await accountOf(person([])).claims('id_token', 'openid email', {}, []);
    expect(claims).not.toHaveProperty('email');
    expect(claims).not.toHaveProperty('email_verified');
  });
});
