import { randomBytes } from 'node:crypto';
import { verify } from '@node-rs/argon2';
import { configSchema } from '../src/app/config.js';
import { createServices } from '../src/app/services.js';
import type { Actor } from '../src/audit/actor.js';
import { systemClock } from '../src/clock.js';
import { MasterKey } from '../src/keys/master-key.js';
import type { BenchEnv } from './lib/env.js';
import { throughputs } from './lib/measure.js';
import { type Row, ratioAtLeast, type Scenario } from './lib/scenario.js';
import { published } from './lib/stats.js';

const USERS = 16;
const PASSWORD = 'correct horse battery staple';
const operator: Actor = { type: 'operator', name: 'bench' };

/** Keycloak's sizing guide: "For each 15 password-based user logins per second, allocate 1 vCPU". */
export const KEYCLOAK_LOGINS_PER_VCPU = 15;
export const KEYCLOAK_SIZING_URL =
  'https://www.keycloak.org/high-availability/single-cluster/concepts-memory-and-cpu-sizing';

/**
 * Password sign-in per core: the real SigninService.password (throttle check, user lookup, argon2id
 * verify, then one transaction with the session, the throttle reset and the audit event), one sign-in
 * at a time so one core is busy, against the raw argon2id verify of the same hash in the same run.
 */
export const passwordSignin: Scenario = {
  name: 'signin',
  title: 'password sign-in per core vs raw argon2id verify (and Keycloak’s published sizing)',
  async run(env: BenchEnv): Promise<Row[]> {
    const rows: Row[] = [];
    for (const engine of env.engines) {
      const { store, url } = await env.freshStore(engine, 'signin');
      try {
        const config = configSchema.parse({
          database: { url },
          signin: { requireMfa: false },
          log: { level: 'silent' },
        });
        const services = createServices(config, store, systemClock, new MasterKey(randomBytes(32)));
        const names: string[] = [];
        for (let i = 0; i < USERS; i++) {
          const userName = `bench-user-${i}@contoso.example`;
          await services.users.create(
            { actor: operator },
            {
              userName,
              displayName: `Bench User ${i}`,
              attributes: { department: 'Engineering' },
              password: PASSWORD,
            },
          );
          names.push(userName);
        }
        const { password_hash: hash } = await store.db
          .selectFrom('users')
          .select('password_hash')
          .where('user_name_key', '=', names[0]!)
          .executeTakeFirstOrThrow();
        if (!hash) throw new Error('signin: the user was created without a password hash');
        let n = 0;
        const req = { ip: '198.51.100.7', userAgent: 'ferry-bench/1 (password sign-in)' };
        const r = await throughputs(
          {
            ferry: async () => {
              const result = await services.signin.password(names[n++ % USERS]!, PASSWORD, req);
              if (result.status !== 'signed-in')
                throw new Error(`signin: expected signed-in, got ${result.status}`);
            },
            raw: async () => {
              if (!(await verify(hash, PASSWORD))) throw new Error('signin: raw verify failed');
            },
          },
          { runs: env.runs, runMs: 1500, warmupMs: 500 },
        );
        const cost = config.passwords;
        const costText = `m=${cost.memoryKiB} KiB, t=${cost.iterations}, p=${cost.parallelism}`;
        rows.push(
          {
            scenario: `password sign-in (${engine})`,
            unit: 'sign-ins/s per core',
            better: 'higher',
            ferry: r.ferry,
            reference: r.raw,
            referenceName: `raw argon2id verify (@node-rs/argon2, ${costText})`,
            goal: ratioAtLeast(0.9),
            note: 'beyond the hash: 2 queries before it, then a transaction of 6 statements (TOTP check, session, throttle reset, hash-chained audit) and its commit',
          },
          {
            scenario: `password sign-in vs Keycloak sizing (${engine})`,
            unit: 'sign-ins/s per core',
            better: 'higher',
            ferry: r.ferry,
            reference: published(KEYCLOAK_LOGINS_PER_VCPU),
            referencePublished: true,
            referenceName: 'Keycloak sizing guide, per vCPU (published, not measured; its own hash cost)',
            goal: ratioAtLeast(2),
          },
        );
      } finally {
        await store.close();
      }
    }
    return rows;
  },
};
