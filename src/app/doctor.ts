import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import { systemClock } from '../clock.js';
import { type SigningKeyPurpose, SigningKeys } from '../keys/signing-keys.js';
import { migratorFor } from '../store/migrate.js';
import { openStore, redactUrl, type Store } from '../store/open.js';
import { type Config, ConfigInvalid, loadConfig } from './config.js';
import { describeFileModeProblem, fileModeProblems } from './file-modes.js';
import { loadMasterKey } from './master-key.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
}

/** Clock difference to the database beyond which sessions and credential lifetimes go wrong. */
export const MAX_CLOCK_SKEW_MS = 30_000;
const CERTIFICATE_WARNING_DAYS = 30;
const PURPOSES: SigningKeyPurpose[] = ['saml', 'oidc-es256', 'oidc-rs256'];

/**
 * `ferry doctor`: what an operator checks before and after a change, in one run. It never creates
 * the database and never writes to it; each check says what is wrong and how to fix it.
 */
export async function runDoctor(
  configFlag: string | undefined,
  options: { awsTimeoutMs?: number } = {},
): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string) => checks.push({ name, status, detail });
  let config: Config;
  try {
    const loaded = loadConfig(configFlag);
    config = loaded.config;
    add('config', 'ok', loaded.path ?? 'defaults and environment variables (no ferry.yaml)');
  } catch (err) {
    if (err instanceof ConfigInvalid) {
      add('config', 'fail', err.message);
      return checks;
    }
    throw err;
  }
  checkPublicUrl(config, add);
  for (const problem of fileModeProblems(config)) add('file modes', 'fail', describeFileModeProblem(problem));
  if (!checks.some((c) => c.name === 'file modes')) add('file modes', 'ok', 'data and key files are private');

  let masterKeyOk = false;
  let masterKey: ReturnType<typeof loadMasterKey> | undefined;
  try {
    masterKey = loadMasterKey(config, 'configuration');
    masterKeyOk = true;
    add('master key', 'ok', config.keys.masterKeyFile ?? 'from FERRY_MASTER_KEY / keys.masterKey');
  } catch (err) {
    add('master key', 'fail', (err as Error).message);
  }

  const url = config.database.url;
  const sqliteFile = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : null;
  if (sqliteFile && sqliteFile !== ':memory:' && !existsSync(sqliteFile)) {
    add('database', 'fail', `${sqliteFile} does not exist (ferry db migrate or ferry serve creates it)`);
  } else {
    const store = openStore(url, { poolSize: 1, onIdleError: () => {} });
    try {
      await store.ping();
      add('database', 'ok', `${redactUrl(url)} (${store.engine})`);
      await checkMigrations(store, add);
      await checkClockSkew(store, add);
      if (masterKeyOk && masterKey) await checkSigningKeys(store, masterKey, add);
    } catch (err) {
      add('database', 'fail', `${redactUrl(url)}: ${(err as Error).message}`);
    } finally {
      await store.close();
    }
  }
  await checkAws(config, add, options.awsTimeoutMs ?? 5_000);
  return checks;
}

function checkPublicUrl(config: Config, add: (n: string, s: CheckStatus, d: string) => void): void {
  const url = new URL(config.publicUrl);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.pathname !== '/' || url.search || url.hash) {
    add(
      'public URL',
      'fail',
      `${config.publicUrl} has a path or query; use the origin only, e.g. https://ferry.example.com`,
    );
  } else if (url.protocol !== 'https:' && !loopback) {
    add(
      'public URL',
      'fail',
      `${config.publicUrl} is plain http on a non-loopback host: browsers and AWS need https`,
    );
  } else if (
    loopback &&
    !config.listen.startsWith('127.') &&
    !config.listen.startsWith('[::1]') &&
    !config.listen.startsWith('localhost')
  ) {
    add(
      'public URL',
      'warn',
      `${config.publicUrl} is a loopback address but Ferry listens on ${config.listen}: set publicUrl to the address people use`,
    );
  } else {
    add('public URL', 'ok', config.publicUrl);
  }
}

async function checkMigrations(
  store: Store,
  add: (n: string, s: CheckStatus, d: string) => void,
): Promise<void> {
  const migrator = migratorFor(store);
  const all = await migrator.getMigrations();
  const pending = all.filter((m) => !m.executedAt).map((m) => m.name);
  if (pending.length)
    add('migrations', 'fail', `${pending.length} pending (${pending.join(', ')}): run ferry db migrate`);
  else add('migrations', 'ok', `${all.length} applied`);
}

async function checkClockSkew(
  store: Store,
  add: (n: string, s: CheckStatus, d: string) => void,
): Promise<void> {
  const before = Date.now();
  const query =
    store.engine === 'postgres'
      ? sql<{
          now: string;
        }>`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as now`
      : sql<{ now: string }>`select strftime('%Y-%m-%dT%H:%M:%fZ', 'now') as now`;
  const { rows } = await query.execute(store.db);
  const after = Date.now();
  const skewMs = Date.parse(rows[0]!.now) - (before + after) / 2;
  const text = `${skewMs >= 0 ? '+' : ''}${Math.round(skewMs)} ms against the database`;
  add(
    'clock',
    Math.abs(skewMs) > MAX_CLOCK_SKEW_MS ? 'fail' : 'ok',
    Math.abs(skewMs) > MAX_CLOCK_SKEW_MS ? `${text}: synchronise this machine's clock (NTP)` : text,
  );
}

async function checkSigningKeys(
  store: Store,
  masterKey: ReturnType<typeof loadMasterKey>,
  add: (n: string, s: CheckStatus, d: string) => void,
): Promise<void> {
  const keys = new SigningKeys(store, systemClock, masterKey);
  for (const purpose of PURPOSES) {
    try {
      const published = await keys.published(purpose);
      const current = published.find((k) => k.state === 'current');
      if (!current) {
        add(`signing key ${purpose}`, 'warn', 'none yet: ferry serve creates it at start');
        continue;
      }
      const notAfter = new Date(new X509Certificate(current.certificatePem).validTo);
      const days = Math.floor((notAfter.getTime() - Date.now()) / 86_400_000);
      const next = published.find((k) => k.state === 'next');
      if (days < CERTIFICATE_WARNING_DAYS && !next) {
        add(
          `signing key ${purpose}`,
          'fail',
          `certificate expires in ${days} days: rotation due (ferry keys rotate)`,
        );
      } else {
        add(
          `signing key ${purpose}`,
          'ok',
          `opens with this master key; certificate valid ${days} more days${next ? `; next key staged since ${next.createdAt}` : ''}`,
        );
      }
    } catch (err) {
      add(
        `signing key ${purpose}`,
        'fail',
        `cannot be opened (${(err as Error).message}): wrong master key for this database?`,
      );
    }
  }
}

async function checkAws(
  config: Config,
  add: (n: string, s: CheckStatus, d: string) => void,
  timeoutMs: number,
): Promise<void> {
  const endpoint = config.aws.endpoint ?? `https://sts.${config.aws.region}.amazonaws.com`;
  try {
    // Any HTTP answer proves the endpoint is reachable; STS answers an unsigned GET with an error.
    const res = await fetch(endpoint, { signal: AbortSignal.timeout(timeoutMs) });
    add('AWS', 'ok', `${endpoint} answers (HTTP ${res.status})`);
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    add('AWS', 'fail', `${endpoint} unreachable (${cause}): check the network, proxy or aws.endpoint`);
  }
}

export function formatChecks(checks: Check[]): string {
  const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  return `${checks.map((c) => `${mark[c.status]}  ${c.name}: ${c.detail}`).join('\n')}\n`;
}
