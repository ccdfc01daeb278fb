import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { BenchEnv } from './lib/env.js';
import { benchSigningKey } from './lib/keys.js';
import { throughputs } from './lib/measure.js';
import type { Row, Scenario } from './lib/scenario.js';

/**
 * Raw signatures per second on one core, straight from node:crypto (OpenSSL): the physical limit
 * every issuer's figure is read against (SAML now; OIDC tokens and SSH certificates later).
 */
export const cryptoSign: Scenario = {
  name: 'crypto',
  title: 'raw crypto.sign: RSA-2048, RSA-3072, ES256, Ed25519',
  async run(env: BenchEnv): Promise<Row[]> {
    // What an XML-DSig SignedInfo or a JWS signing input is like in size.
    const data = randomBytes(700);
    const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const rsa3072 = (await benchSigningKey(env, 3072)).privateKey;
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const ed25519 = generateKeyPairSync('ed25519').privateKey;
    const r = await throughputs(
      {
        rsa2048: () => sign('sha256', data, rsa2048),
        rsa3072: () => sign('sha256', data, rsa3072),
        es256: () => sign('sha256', data, { key: p256, dsaEncoding: 'ieee-p1363' }),
        ed25519: () => sign(null, data, ed25519),
      },
      { runs: env.runs, runMs: 500, warmupMs: 300 },
    );
    const row = (scenario: string, name: string, s: (typeof r)['rsa2048']): Row => ({
      scenario,
      unit: 'signatures/s, 1 core',
      better: 'higher',
      ferry: null,
      reference: s,
      referenceName: name,
      goal: null,
    });
    return [
      row('raw signature RSA-2048', 'crypto.sign RSA-2048 PKCS#1 v1.5 SHA-256', r.rsa2048),
      row('raw signature RSA-3072', 'crypto.sign RSA-3072 PKCS#1 v1.5 SHA-256', r.rsa3072),
      row('raw signature ES256', 'crypto.sign ECDSA P-256 SHA-256', r.es256),
      row('raw signature Ed25519', 'crypto.sign Ed25519', r.ed25519),
    ];
  },
};
