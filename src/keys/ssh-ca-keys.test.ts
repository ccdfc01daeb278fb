import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { publicBlobOf, publicKeyLine } from '../ssh/public-key.js';
import { SshCaKeys } from './ssh-ca-keys.js';

const ctx = { actor: { type: 'operator' as const, name: 'test' } };

describe.each(ENGINES)('SSH CA keys on %s', (engine) => {
  let ferry: TestFerry;
  let keys: SshCaKeys;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    const { store, clock, masterKey } = ferry.services;
    keys = new SshCaKeys(store, clock, masterKey, (k) => publicKeyLine(publicBlobOf(k), ''));
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('creates one current key per use and algorithm, even when asked concurrently, sealed at rest', async () => {
    const all = await Promise.all([1, 2, 3, 4].map(() => keys.ensureCurrent('user', 'ssh-ed25519')));
    expect(new Set(all.map((k) => k.id)).size).toBe(1);
    const rows = await ferry.services.store.db.selectFrom('ssh_ca_keys').selectAll().execute();
    expect(rows.filter((r) => r.use === 'user' && r.state === 'current')).toHaveLength(1);
    const row = rows.find((r) => r.id === all[0]!.id)!;
    expect(row.private_key_sealed).not.toContain('PRIVATE KEY');
    expect(row.public_key).toBe(publicKeyLine(publicBlobOf(all[0]!.privateKey), ''));
  });

  it('rotates: the staged key is published beside the current one, then takes over', async () => {
    const current = await keys.ensureCurrent('host', 'ssh-ed25519');
    const next = await keys.rotate('host', 'ssh-ed25519', ctx);
    expect((await keys.published('host')).map((k) => k.id)).toEqual([current.id, next.id]);
    await expect(keys.rotate('host', 'ssh-ed25519', ctx)).rejects.toThrow(/already staged/);
    await keys.activateNext('host', 'ssh-ed25519', ctx);
    expect((await keys.ensureCurrent('host', 'ssh-ed25519')).id).toBe(next.id);
    expect((await keys.published('host')).map((k) => k.id)).toEqual([next.id]);
    // The retired key stays known (the KRL still names certificates it signed).
    expect((await keys.all('host')).map((k) => k.id).sort()).toEqual([current.id, next.id].sort());
    await expect(keys.activateNext('host', 'ssh-ed25519', ctx)).rejects.toThrow(/no next/);
  });
  it('signs with the new key at once after this instance activates it, even when a read of the old one was under way', async () => {
    const old = await keys.ensureCurrent('user', 'rsa-sha2-512');
    const next = await keys.rotate('user', 'rsa-sha2-512', ctx);
    const ensure = keys.ensureCurrent.bind(keys);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // a signing() read that found the old key and is slow to come back: the activation commits meanwhile
    keys.ensureCurrent = async (use, algorithm) => {
      const found = await ensure(use, algorithm);
      await gate;
      return found;
    };
    const slow = keys.signing('user', 'rsa-sha2-512');
    await new Promise((r) => setTimeout(r, 50));
    keys.ensureCurrent = ensure;
    await keys.activateNext('user', 'rsa-sha2-512', ctx);
    release();
    expect((await slow).id).toBe(old.id);
    expect((await keys.signing('user', 'rsa-sha2-512')).id).toBe(next.id);
  });
});
