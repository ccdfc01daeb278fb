import { verify } from '@node-rs/argon2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { type ScimClient, scimClient } from '../../../test/support/scim.js';
import { passwordOf } from './users-endpoint.js';

const ADMIN = { actor: { type: 'operator' as const, name: 'test' } };
const NEW_PASSWORD = 'another long passphrase of 2026';
const USER_URN = 'urn:ietf:params:scim:schemas:core:2.0:User';

describe('the password a SCIM PATCH sets, read from its operations', () => {
  it.each([
    [[{ op: 'replace', path: 'password', value: 'p1' }], 'p1'],
    [[{ op: 'add', path: 'PassWord', value: 'p2' }], 'p2'],
    [[{ op: 'replace', path: `${USER_URN}:password`, value: 'p3' }], 'p3'],
    [[{ op: 'replace', value: { displayName: 'x', password: 'p4' } }], 'p4'],
    [
      [
        { op: 'replace', path: 'password', value: 'first' },
        { op: 'replace', value: { Password: 'last' } },
      ],
      'last',
    ],
    [[{ op: 'replace', path: 'displayName', value: 'password' }], undefined],
    [[{ op: 'remove', path: 'password' }], undefined],
  ] as const)('%j → %s', (ops, expected) => {
    expect(passwordOf(ops as never)).toBe(expected);
  });
});

/**
 * The argon2 hash of a password set by PATCH runs before the transaction: during it another write to
 * the same user (its row lock on PostgreSQL; SQLite's one writer, shared by every group-committed
 * write) goes through at once instead of waiting for the hash.
 */
describe.each(ENGINES)('SCIM PATCH with a password hashes outside the transaction (%s)', (engine) => {
  let ferry: TestFerry;
  let hr: ScimClient & { connectionId: string };

  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    hr = await scimClient(ferry, 'hr-feed', { passwordWrites: true });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('another write to the user completes while the hash runs, and the password is set', async () => {
    const created = await hr.post('/Users', {
      schemas: [USER_URN],
      userName: `hash-${engine}@contoso.example`,
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const users = ferry.services.users;
    const original = users.hashNewPassword.bind(users);
    let hashing!: () => void;
    const hashStarted = new Promise<void>((r) => {
      hashing = r;
    });
    let finish!: () => void;
    const gate = new Promise<void>((r) => {
      finish = r;
    });
    users.hashNewPassword = async (password) => {
      hashing();
      await gate; // a slow hash
      return original(password);
    };
    try {
      const patch = hr.patch(`/Users/${id}`, [{ op: 'replace', path: 'password', value: NEW_PASSWORD }]);
      await hashStarted;
      const during = await Promise.race([
        users.update(ADMIN, id, { displayName: 'Changed during the hash' }).then(() => 'written'),
        new Promise((r) => setTimeout(() => r('blocked by the hash'), 3_000)),
      ]);
      finish();
      expect(during).toBe('written');
      expect((await patch).status).toBe(200);
    } finally {
      finish();
      users.hashNewPassword = original;
    }
    const row = await ferry.services.store.db
      .selectFrom('users')
      .select(['password_hash', 'display_name'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.display_name).toBe('Changed during the hash');
    expect(await verify(row.password_hash!, NEW_PASSWORD)).toBe(true);
  });
  it('a PATCH setting a password for a user that is not there answers 404 without hashing', async () => {
    const users = ferry.services.users;
    const original = users.hashNewPassword.bind(users);
    let hashes = 0;
    users.hashNewPassword = async (password) => {
      hashes++;
      return original(password);
    };
    try {
      for (const id of ['not-an-id', '0b6f3a52-6f7e-4c1a-9d55-3c2f4e8a9b10']) {
        const res = await hr.patch(`/Users/${id}`, [
          { op: 'replace', path: 'password', value: NEW_PASSWORD },
        ]);
        expect(res.status).toBe(404);
        expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
      }
    } finally {
      users.hashNewPassword = original;
    }
    expect(hashes).toBe(0);
  });
});
