import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  generateMasterKey,
  InvalidMasterKey,
  MasterKey,
  parseMasterKey,
  SealedDataTampered,
} from './master-key.js';

const ROOT = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

describe('parseMasterKey', () => {
  it('accepts 32 bytes as base64 (what ferry init writes)', () => {
    expect(parseMasterKey(ROOT.toString('base64'))).toEqual(ROOT);
    const generated = generateMasterKey();
    expect(parseMasterKey(generated)).toEqual(Buffer.from(generated, 'base64'));
    expect(parseMasterKey(generated)).toHaveLength(32);
  });

  it('accepts 32 bytes as base64url, with or without padding', () => {
    const key = Buffer.from(`fbff${'fe'.repeat(30)}`, 'hex'); // encodes with - and _ in base64url
    const url = key.toString('base64url');
    expect(url).toMatch(/[-_]/);
    expect(parseMasterKey(url)).toEqual(key);
    expect(parseMasterKey(key.toString('base64').replace(/=+$/, ''))).toEqual(key);
  });

  it('accepts 32 bytes as 64 hex characters, in either case', () => {
    expect(parseMasterKey(ROOT.toString('hex'))).toEqual(ROOT);
    expect(parseMasterKey(ROOT.toString('hex').toUpperCase())).toEqual(ROOT);
  });

  it('ignores surrounding whitespace, as in a key file ending with a newline', () => {
    expect(parseMasterKey(`  ${ROOT.toString('base64')}\n`)).toEqual(ROOT);
    expect(parseMasterKey(`${ROOT.toString('hex')}\r\n`)).toEqual(ROOT);
  });

  it.each([
    ['16 bytes of base64', randomBytes(16).toString('base64')],
    ['31 bytes of base64', randomBytes(31).toString('base64')],
    ['33 bytes of base64', randomBytes(33).toString('base64')],
    ['64 bytes of base64', randomBytes(64).toString('base64')],
    ['62 hex characters', randomBytes(31).toString('hex')],
    ['66 hex characters', randomBytes(33).toString('hex')],
    ['an empty string', ''],
    ['whitespace', '   \n'],
    ['a password', 'correct horse battery staple'],
    [
      'base64 with a character replaced by a typo',
      `${ROOT.toString('base64').slice(0, 10)}*${ROOT.toString('base64').slice(11)}`,
    ],
  ])('rejects %s with InvalidMasterKey', (_what, text) => {
    expect(() => parseMasterKey(text)).toThrow(InvalidMasterKey);
  });

  it('the MasterKey itself refuses a root that is not 32 bytes', () => {
    expect(() => new MasterKey(randomBytes(16))).toThrow(InvalidMasterKey);
    expect(() => new MasterKey(randomBytes(33))).toThrow(InvalidMasterKey);
  });
});

describe('MasterKey sealing', () => {
  const key = new MasterKey(ROOT);
  const context = 'totp_factors:f-1:secret';

  it.each([
    ['a TOTP secret', 'JBSWY3DPEHPK3PXP'],
    ['an empty string', ''],
    ['unicode', 'päss wörd — 🔑'],
    ['a long value', 'x'.repeat(10_000)],
  ])('unseal(seal(x)) gives back %s', (_what, plaintext) => {
    const sealed = key.seal(plaintext, context);
    expect(key.unseal(sealed, context)).toBe(plaintext);
  });

  it('a sealed value does not contain the plaintext', () => {
    const secret = 'JBSWY3DPEHPK3PXP';
    const sealed = key.seal(secret, context);
    expect(sealed).not.toContain(secret);
    expect(sealed).not.toContain(Buffer.from(secret).toString('base64url'));
  });

  it('sealing the same plaintext twice gives different values (random IV), both unsealable', () => {
    const a = key.seal('JBSWY3DPEHPK3PXP', context);
    const b = key.seal('JBSWY3DPEHPK3PXP', context);
    expect(a).not.toBe(b);
    expect(a.split('.')[1]).not.toBe(b.split('.')[1]);
    expect(key.unseal(a, context)).toBe('JBSWY3DPEHPK3PXP');
    expect(key.unseal(b, context)).toBe('JBSWY3DPEHPK3PXP');
  });

  it('never repeats a nonce across many seals, past refills of the nonce pool', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const sealed = key.seal('x', context);
      nonces.add(sealed.split('.')[1]!);
      if (i % 997 === 0) expect(key.unseal(sealed, context)).toBe('x');
    }
    expect(nonces.size).toBe(3000);
  });

  it('a value sealed under the same root key unseals after a restart (new MasterKey instance)', () => {
    const sealed = key.seal('JBSWY3DPEHPK3PXP', context);
    expect(new MasterKey(Buffer.from(ROOT)).unseal(sealed, context)).toBe('JBSWY3DPEHPK3PXP');
  });

  it('unsealing with another context (moved to another row) throws SealedDataTampered', () => {
    const sealed = key.seal('JBSWY3DPEHPK3PXP', 'totp_factors:f-1:secret');
    expect(() => key.unseal(sealed, 'totp_factors:f-2:secret')).toThrow(SealedDataTampered);
  });

  it('unsealing with another master key throws SealedDataTampered', () => {
    const sealed = key.seal('JBSWY3DPEHPK3PXP', context);
    expect(() => new MasterKey(randomBytes(32)).unseal(sealed, context)).toThrow(SealedDataTampered);
  });

  /** Flips one bit of byte `index` in part `part` (1 = IV, 2 = ciphertext, 3 = tag). */
  function flip(sealed: string, part: 1 | 2 | 3, index = 0): string {
    const parts = sealed.split('.');
    const bytes = Buffer.from(parts[part]!, 'base64url');
    bytes[index] = bytes[index]! ^ 0x01;
    parts[part] = bytes.toString('base64url');
    return parts.join('.');
  }

  it.each([
    ['the first ciphertext byte', 2 as const, 0],
    ['the last ciphertext byte', 2 as const, 15],
    ['the IV', 1 as const, 0],
    ['the authentication tag', 3 as const, 15],
  ])('a flipped bit in %s throws SealedDataTampered', (_what, part, index) => {
    const sealed = key.seal('JBSWY3DPEHPK3PXP', context);
    expect(() => key.unseal(flip(sealed, part, index), context)).toThrow(SealedDataTampered);
  });

  function cutTag(sealed: string, bytes: number): string {
    const parts = sealed.split('.');
    parts[3] = Buffer.from(parts[3]!, 'base64url').subarray(0, bytes).toString('base64url');
    return parts.join('.');
  }

  it.each([
    ['an unknown version', (s: string) => s.replace(/^v1\./, 'v2.')],
    ['a missing tag', (s: string) => s.split('.').slice(0, 3).join('.')],
    ['a truncated tag', (s: string) => s.slice(0, -4)],
    ['a tag cut to 4 bytes', (s: string) => cutTag(s, 4)],
    ['no structure at all', () => 'JBSWY3DPEHPK3PXP'],
    ['an empty string', () => ''],
  ])('a sealed value with %s throws SealedDataTampered', (_what, mangle) => {
    const sealed = key.seal('JBSWY3DPEHPK3PXP', context);
    expect(() => key.unseal(mangle(sealed), context)).toThrow(SealedDataTampered);
  });
});

describe('MasterKey.derive', () => {
  const key = new MasterKey(ROOT);

  it('gives a different key for each purpose, and the same key for the same purpose', () => {
    const purposes = ['seal/v1', 'cookie/v1', 'csrf/v1', 'oidc/signing'];
    const derived = purposes.map((p) => key.derive(p).toString('hex'));
    expect(new Set(derived).size).toBe(purposes.length);
    expect(key.derive('cookie/v1')).toEqual(key.derive('cookie/v1'));
    expect(new MasterKey(Buffer.from(ROOT)).derive('cookie/v1')).toEqual(key.derive('cookie/v1'));
  });

  it('never hands out the root key itself, and depends on the root', () => {
    expect(key.derive('seal/v1')).not.toEqual(ROOT);
    expect(new MasterKey(randomBytes(32)).derive('seal/v1')).not.toEqual(key.derive('seal/v1'));
  });

  it('gives keys of the requested length (32 bytes by default)', () => {
    expect(key.derive('x')).toHaveLength(32);
    expect(key.derive('x', 64)).toHaveLength(64);
    expect(key.derive('x', 16)).toHaveLength(16);
  });
});

describe('MasterKey lookup keys', () => {
  it('are stable for one key and purpose, and differ across purposes and master keys', () => {
    const a = new MasterKey(Buffer.alloc(32, 7));
    const b = new MasterKey(Buffer.alloc(32, 8));
    expect(a.lookupKey('session', 'v')).toBe(a.lookupKey('session', 'v'));
    expect(a.lookupKey('session', 'v')).not.toBe(a.lookupKey('api-token', 'v'));
    expect(a.lookupKey('session', 'v')).not.toBe(b.lookupKey('session', 'v'));
    expect(a.lookupKey('session', 'a-bearer-value')).not.toContain('bearer');
    expect(a.lookupKey('session', 'v')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
