import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../test/support/db.js';
import { ManualClock } from '../clock.js';
import { openStore, type Store } from '../store/open.js';
import {
  AWS_IDENTITY_PATTERN,
  AwsIdentityCollision,
  awsIdentityCandidates,
  awsIdentityOf,
  awsIdentitySuffix,
} from './aws-identity.js';

const person = (id: string, userName: string) => ({ kind: 'user' as const, id, userName });

describe('awsIdentityCandidates: what AWS may call a person', () => {
  it('keeps a UPN AWS accepts as it is, with a suffixed fallback for when someone else holds it', () => {
    const suffix = awsIdentitySuffix('user:u-1');
    expect(suffix).toMatch(/^[0-9a-f]{8}$/);
    expect(awsIdentityCandidates('user:u-1', 'test-awsdeveloper@contoso.example')).toEqual([
      'test-awsdeveloper@contoso.example',
      `test-awsdeveloper@contoso.example-${suffix}`,
    ]);
    expect(awsIdentityCandidates('user:u-1', '  a.b+c=d,e@x.example  ')[0]).toBe('a.b+c=d,e@x.example');
  });

  it.each([
    ['accents', 'josé.müller@contoso.example', 'jose.muller@contoso.example'],
    ['spaces and quotes', "o'brien smith@contoso.example", 'o-brien-smith@contoso.example'],
    ['slashes, colons, hashes', 'user/with:colon#hash@x.example', 'user-with-colon-hash@x.example'],
    ['no Latin letters', '日本語', 'user'],
    ['emoji only', '😀', 'user'],
    ['one character', 'a', 'a'],
  ])('never hands out a bare normalised name when normalising changes the UPN (%s)', (_, upn, base) => {
    const candidates = awsIdentityCandidates('user:u-1', upn);
    expect(candidates).toEqual([`${base}-${awsIdentitySuffix('user:u-1')}`]);
  });

  it('gives two people whose UPNs normalise alike different values, each stable', () => {
    const jose = awsIdentityCandidates('user:u-jose', 'jose@contoso.example');
    const joseAccent = awsIdentityCandidates('user:u-josé', 'josé@contoso.example');
    expect(jose[0]).toBe('jose@contoso.example');
    expect(joseAccent).not.toContain('jose@contoso.example');
    expect(awsIdentityCandidates('user:u-josé', 'josé@contoso.example')).toEqual(joseAccent);
  });

  it('cuts long names to 64 keeping the owner suffix, so two long UPNs sharing a prefix stay apart', () => {
    const long = `${'a'.repeat(70)}@contoso.example`;
    const [a] = awsIdentityCandidates('user:u-a', long);
    const [b] = awsIdentityCandidates('user:u-b', `${'a'.repeat(70)}@fabrikam.example`);
    expect(a).toHaveLength(64);
    expect(a!.startsWith('a'.repeat(55))).toBe(true);
    expect(a).not.toBe(b);
    expect(awsIdentityCandidates('user:u-a', 'b'.repeat(64))[0]).toBe('b'.repeat(64));
  });

  it('always yields values AWS accepts', () => {
    for (const upn of [
      'ab',
      'Ünïcödé@x',
      'a b c',
      'é'.repeat(100),
      'x\u0000y',
      'tab\there',
      '😀user@x',
      '',
      '---',
    ])
      for (const c of awsIdentityCandidates('workload:w-1', upn)) expect(c).toMatch(AWS_IDENTITY_PATTERN);
  });
});

describe.each(ENGINES)('awsIdentityOf: one person, one AWS identity (%s)', (engine) => {
  let db: TestDatabase;
  let store: Store;
  const clock = new ManualClock(new Date('2026-03-01T12:00:00Z'));

  beforeEach(async () => {
    db = await createMigratedTestDatabase(engine);
    store = openStore(db.url);
  });
  afterEach(async () => {
    await store.close();
    await db.drop();
  });

  const of = (owner: Parameters<typeof awsIdentityOf>[2]) => awsIdentityOf(store.db, clock, owner);

  it('gives josé@ and jose@ different identities, and each the same one on every issue', async () => {
    const jose = await of(person('u-jose', 'jose@contoso.example'));
    const joseAccent = await of(person('u-jose-accent', 'josé@contoso.example'));
    expect(jose).toBe('jose@contoso.example');
    expect(joseAccent).toBe(`jose@contoso.example-${awsIdentitySuffix('user:u-jose-accent')}`);
    expect(await of(person('u-jose-accent', 'josé@contoso.example'))).toBe(joseAccent);
    expect(await of(person('u-jose', 'jose@contoso.example'))).toBe(jose);
  });

  it('never hands a reused UPN (or a case variant of it) to the next person', async () => {
    const first = await of(person('u-alice-2019', 'alice@contoso.example'));
    // Alice left; a new Alice is hired with the same UPN. Alice's old revocations must not touch her.
    const second = await of(person('u-alice-2026', 'alice@contoso.example'));
    const third = await of(person('u-alice-caps', 'Alice@contoso.example'));
    expect(first).toBe('alice@contoso.example');
    expect(second).toBe(`alice@contoso.example-${awsIdentitySuffix('user:u-alice-2026')}`);
    expect(third).toBe(`Alice@contoso.example-${awsIdentitySuffix('user:u-alice-caps')}`);
    expect(await of(person('u-alice-2026', 'alice@contoso.example'))).toBe(second);
  });

  it('keeps workloads and people apart even when their ids and names match', async () => {
    const user = await of(person('same-id', 'deploy-bot'));
    const workload = await of({ kind: 'workload', id: 'same-id', userName: 'deploy-bot' });
    expect(user).toBe('deploy-bot');
    expect(workload).toBe(`deploy-bot-${awsIdentitySuffix('workload:same-id')}`);
  });

  it('refuses to issue when every candidate already belongs to someone else', async () => {
    // Two other accounts crafted to hold both of Mallory's values (the plain UPN and its suffixed form).
    const victim = 'mallory@contoso.example';
    const suffixed = `${victim}-${awsIdentitySuffix('user:u-mallory')}`;
    await of(person('u-holder-1', victim));
    await of(person('u-holder-2', suffixed));
    await expect(of(person('u-mallory', victim))).rejects.toBeInstanceOf(AwsIdentityCollision);
    await expect(of(person('u-mallory', victim))).rejects.toThrow(/already belong to someone else/);
  });

  it('gives twenty people claiming the same UPN at once twenty different identities', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `u-burst-${i}`);
    const got = await Promise.all(ids.map((id) => of(person(id, 'shared@contoso.example'))));
    expect(new Set(got.map((g) => g.toLowerCase())).size).toBe(20);
    expect(got.filter((g) => g === 'shared@contoso.example')).toHaveLength(1);
    const rows = await store.db.selectFrom('aws_identities').selectAll().execute();
    expect(rows).toHaveLength(20);
  });
});
