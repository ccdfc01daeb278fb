import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { entraIdentityOf } from './claims.js';
import { UpstreamSigninError } from './errors.js';
import { tenantOfIssuer } from './options.js';

const tid = randomUUID();
const oid = randomUUID();
const base = { tid, oid, preferred_username: 'pat@contoso.example', name: 'Pat', ver: '2.0' };

describe('Entra ID token claims', () => {
  it('reads oid, tid, names, e-mail, groups and amr', () => {
    const g = randomUUID();
    const id = entraIdentityOf({
      ...base,
      email: 'pat@contoso.example',
      groups: [g, 'not-a-guid'],
      amr: ['pwd', 'mfa'],
    });
    expect(id).toMatchObject({
      tenantId: tid,
      objectId: oid,
      userName: 'pat@contoso.example',
      displayName: 'Pat',
      email: 'pat@contoso.example',
      groups: [g],
      groupsOverage: false,
      amr: ['pwd', 'mfa'],
    });
  });

  it('recognises group overage by _claim_names.groups without a groups claim', () => {
    const id = entraIdentityOf({
      ...base,
      _claim_names: { groups: 'src1' },
      _claim_sources: { src1: { endpoint: 'https://graph.windows.net/x/users/y/getMemberObjects' } },
    });
    expect(id.groupsOverage).toBe(true);
    expect(id.groups).toBeNull();
    expect(entraIdentityOf(base).groups).toBeNull(); // no group claims configured: memberships untouched
  });

  it('keeps only well-formed amr values, each once', () => {
    expect(entraIdentityOf({ ...base, amr: ['mfa', 'mfa', 'MFA', '<script>', 42, 'fido'] }).amr).toEqual([
      'mfa',
      'fido',
    ]);
    expect(entraIdentityOf({ ...base, amr: 'mfa' }).amr).toEqual([]);
    expect(entraIdentityOf({ ...base, amr: ['ngcmfa'] }).amr).toEqual(['ngcmfa', 'mfa']);
  });

  it('refuses a token without a tenant or object id', () => {
    expect(() => entraIdentityOf({ ...base, tid: undefined })).toThrow(UpstreamSigninError);
    expect(() => entraIdentityOf({ ...base, oid: 'someone' })).toThrow(/oid/);
  });

  it('names the tenant of a single-tenant issuer, none for organizations/common', () => {
    expect(tenantOfIssuer(`https://login.microsoftonline.com/${tid}/v2.0`)).toBe(tid);
    expect(tenantOfIssuer('https://login.microsoftonline.com/organizations/v2.0')).toBeNull();
    expect(tenantOfIssuer('https://login.microsoftonline.com/common/v2.0')).toBeNull();
  });
});
