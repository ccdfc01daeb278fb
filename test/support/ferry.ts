import { randomBytes } from 'node:crypto';
import { type Config, configSchema } from '../../src/app/config.js';
import { type RunningFerry, type StartOptions, startFerry } from '../../src/app/start.js';
import type { EventHandlers } from '../../src/app/workers.js';
import type { Clock } from '../../src/clock.js';
import { type GeneratedSigningKey, generateSelfSignedRsa } from '../../src/keys/self-signed-certificate.js';
import type { SigningKeyPurpose } from '../../src/keys/signing-keys.js';
import type { Engine } from '../../src/store/open.js';
import { createMigratedTestDatabase, type TestDatabase } from './db.js';

export interface TestFerry extends RunningFerry {
  db: TestDatabase;
  /** an admin API token, created the way `ferry admin token create` does */
  adminToken: string;
  /** fetch against the server, with the admin token unless `auth: false` */
  api(path: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
  close(): Promise<void>;
}

/** Cheap argon2id for tests: the production cost is exercised by the password unit test and the benchmark. */
const TEST_PASSWORD_COST = { memoryKiB: 19456, iterations: 2, parallelism: 1 };

export function testConfig(url: string, overrides: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    listen: '127.0.0.1:0',
    database: { url },
    keys: { masterKey: randomBytes(32).toString('base64') },
    passwords: TEST_PASSWORD_COST,
    log: { level: 'silent' },
    signin: { requireMfa: false },
    ...overrides,
  });
}

/** RSA-3072 generation costs about a second: tests share one key pair per purpose and process (each database still seals its own copy). */
const sharedKeyMaterial = new Map<string, Promise<GeneratedSigningKey>>();
const reuseSigningKey = (purpose: SigningKeyPurpose) => {
  let material = sharedKeyMaterial.get(purpose);
  if (!material) {
    material = generateSelfSignedRsa({
      commonName: `Ferry ${purpose} signing`,
      modulusLength: 2048,
      curve: purpose === 'oidc-es256' ? 'P-256' : undefined,
      notBefore: new Date('2026-01-01T00:00:00Z'),
      validityYears: 10,
    });
    sharedKeyMaterial.set(purpose, material);
  }
  return material;
};

/**
 * Starts a real Ferry (Fastify on a free loopback port, real database of the given engine) in this
 * process. Pass `clock` to move time in tests.
 */
export async function startTestFerry(
  engine: Engine,
  options: {
    clock?: Clock;
    config?: Record<string, unknown>;
    handlers?: EventHandlers;
    db?: TestDatabase;
    /** drain the outbox as events commit (off by default: tests drain by hand) */
    workerWake?: boolean;
    /** the worker's tick (default 60 s: tests drive the work by hand) */
    workerIntervalMs?: number;
    /** demo-only routes and where AWS console sign-ins go (the demo's stand-in console) */
    demo?: StartOptions['demo'];
  } = {},
): Promise<TestFerry> {
  // A migrated copy: starting still runs the migrator, which finds nothing left to apply.
  const db = options.db ?? (await createMigratedTestDatabase(engine));
  const config = testConfig(db.url, options.config);
  const ferry = await startFerry({
    config,
    clock: options.clock,
    logger: false,
    handlers: options.handlers,
    workerIntervalMs: options.workerIntervalMs ?? 60_000,
    workerWake: options.workerWake ?? false,
    signingKeys: { generateKey: reuseSigningKey },
    demo: options.demo,
  });
  const { token } = await ferry.services.apiTokens.create(
    { actor: { type: 'operator', name: 'test' } },
    { name: 'test-admin' },
  );
  // Pass the public URL through: some pages build absolute links from it.
  config.publicUrl = ferry.url;
  return {
    ...ferry,
    db,
    adminToken: token,
    api(path, init = {}) {
      const { auth = true, headers, ...rest } = init;
      const h = new Headers(headers);
      if (auth) h.set('authorization', `Bearer ${token}`);
      if (rest.body !== undefined && !h.has('content-type')) h.set('content-type', 'application/json');
      return fetch(new URL(path, ferry.url), { ...rest, headers: h, redirect: 'manual' });
    },
    async close() {
      await ferry.stop();
      if (!options.db) await db.drop();
    },
  };
}
