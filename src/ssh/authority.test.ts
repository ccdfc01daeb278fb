import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import type { AuditContext } from '../audit/actor.js';
import { listIssued } from '../audit/issued.js';
import { listAudit } from '../audit/ledger.js';
import { generateEd25519KeyPair } from '../cli/ssh-keys.js';
import { InvalidInput } from '../errors.js';
import { principalOf } from '../identity/principal-of.js';
import { SshAccessDenied } from './authority.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const cli = { client: 'cli' as const, ip: '127.0.0.1' };

describe.each(ENGINES)('SSH authority on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  async function person(logins: string[], maxDuration?: number) {
    const s = ferry.services;
    const group = await s.groups.create(ctx, { displayName: `Devs-${++seq}` });
    const user = await s.users.create(ctx, { userName: `dev-${seq}@contoso.example` });
    await s.groups.setMembership(ctx, group.id, user.id, true);
    await s.sshLogins.set(
      ctx,
      { type: 'group', id: group.id, name: group.displayName },
      {
        hosts: '*.dev.internal',
        logins,
        maxDuration,
      },
    );
    const principal = await principalOf(s.store.db, user.id, { amr: ['pwd'], authTime: null });
    const issue = (request: { host?: string; login?: string; duration?: number } = {}) =>
      s.ssh.issueUserCertificate(
        principal,
        cli,
        { publicKey: generateEd25519KeyPair('t').publicKeyLine, host: 'web.dev.internal', ...request },
        { actor: { type: 'user', id: user.id, name: user.userName } },
      );
    return { s, user, issue };
  }

  it('hands out unique serials when many certificates are issued at once', async () => {
    const { issue } = await person(['ec2-user']);
    const certs = await Promise.all(Array.from({ length: 25 }, () => issue({ login: 'ec2-user' })));
    expect(new Set(certs.map((c) => c.serial)).size).toBe(25);
    for (const c of certs) expect(c.keyId).toBe(`dev-${seq}@contoso.example serial ${c.serial}`);
  });

  it("caps the validity at the mapping's maxDuration and records the certificate and an audit event", async () => {
    const { s, user, issue } = await person(['ec2-user'], 120);
    const cert = await issue({ login: 'ec2-user', duration: 3600 });
    const issuedAt = ferry.services.clock.now().getTime();
    expect(Date.parse(cert.validBefore) - issuedAt).toBeLessThanOrEqual(120_000);
    expect(Date.parse(cert.validBefore) - issuedAt).toBeGreaterThan(118_000);
    const shorter = await issue({ login: 'ec2-user', duration: 30 });
    expect(Date.parse(shorter.validBefore) - Date.parse(shorter.validAfter)).toBe(90_000); // 60 s skew + 30 s
    const [record] = await listIssued(s.store.db, { externalId: cert.serial, kind: 'ssh-certificate' });
    expect(record).toMatchObject({
      userId: user.id,
      target: 'ssh:ec2-user@web.dev.internal',
      expiresAt: cert.validBefore,
    });
    const audit = await listAudit(s.store.db, {
      type: 'ssh-certificate.issued',
      subject: user.userName,
      limit: 10,
    });
    expect(audit.map((e) => e.data.serial)).toEqual([cert.serial, shorter.serial]);
  });

  it('picks the only mapped login, asks to choose among several, and refuses with reasons', async () => {
    const one = await person(['ec2-user']);
    expect((await one.issue()).principals).toEqual(['ec2-user']);
    const two = await person(['ec2-user', 'deploy']);
    await expect(two.issue()).rejects.toThrow(/name the login: you may use deploy, ec2-user/);
    await expect(two.issue({ host: 'db.prod.internal', login: 'ec2-user' })).rejects.toThrow(SshAccessDenied);
    await expect(two.issue({ host: 'db.prod.internal' })).rejects.toThrow(/any login on db\.prod\.internal/);
    await expect(two.issue({ host: 'web.*.internal', login: 'ec2-user' })).rejects.toThrow(InvalidInput);
  });

  it('revokes every live certificate of an offboarded person once, and the KRL lists them', async () => {
    const { s, user, issue } = await person(['ec2-user']);
    const a = await issue({ login: 'ec2-user' });
    const b = await issue({ login: 'ec2-user' });
    const revoked = await s.ssh.revokeForUser(ctx, user.id, 'test');
    expect(revoked.sort()).toEqual([a.serial, b.serial].sort());
    expect(await s.ssh.revokeForUser(ctx, user.id, 'test')).toEqual([]);
    const krl = await s.ssh.krl();
    expect(krl.subarray(0, 8).toString('latin1')).toBe('SSHKRL\n\0');
    await expect(s.ssh.revoke(ctx, 'abc', 'x')).rejects.toThrow(InvalidInput);
  });
});
