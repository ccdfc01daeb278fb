import { readFileSync } from 'node:fs';
import { type Kysely, sql } from 'kysely';
import { type AuditContext, actorName, systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import type { MasterKey } from '../../keys/master-key.js';
import { Problem } from '../../problem.js';
import { isUniqueViolation } from '../../store/errors.js';
import type { Store } from '../../store/open.js';
import type { AlertSinksTable, Database } from '../../store/schema.js';
import { SEVERITIES, type Severity } from '../detections/finding.js';
import type { SinkFilter } from '../detections/service.js';
import { AlertSinkTargetUnresolvable, checkedAddresses, type TargetPolicy } from './target-guard.js';

/** What an operator gives to add a sink; the secret part is sealed and never shown again. */
export type SinkInput =
  | { name: string; type: 'webhook'; url: string; secret: string; minSeverity?: Severity }
  /** Slack's incoming webhook URL is itself the credential */
  | { name: string; type: 'slack'; url: string; minSeverity?: Severity }
  | {
      name: string;
      type: 'email';
      host: string;
      port: number;
      /** TLS from the first byte (port 465); otherwise STARTTLS when offered, required with requireTls */
      secure?: boolean;
      requireTls?: boolean;
      user?: string;
      password?: string;
      from: string;
      to: string[];
      minSeverity?: Severity;
    };

/** A sink as the API shows it: never its secret. */
export interface SinkView {
  name: string;
  type: 'webhook' | 'slack' | 'email';
  minSeverity: Severity;
  /** webhook: url; slack: the URL's host and a hint of its end; email: host, port, from, to */
  settings: Record<string, unknown>;
  createdAt: string;
  createdBy: string;
}

/** A sink with its secret unsealed, for delivery only. */
export interface ResolvedSink extends SinkView {
  secret: string;
}

const sealContext = (name: string) => `alert-sink:${name}`;
/** created_by of the sinks the config file declares */
const CONFIG = 'config-file';

/** A sink as `alerts.sinks` in the config file declares it: the secret by reference. */
export interface ConfigSink {
  name: string;
  type: 'webhook' | 'slack' | 'email';
  minSeverity?: Severity;
  url?: string;
  host?: string;
  port?: number;
  secure?: boolean;
  requireTls?: boolean;
  user?: string;
  from?: string;
  to?: string[];
  secretEnv?: string;
  secretFile?: string;
}
/** The name belongs to a sink the config file declares: change it there (409). */
export class AlertSinkDeclaredInConfig extends Problem {
  constructor(name: string, detail: string) {
    super(409, 'alert-sink-declared-in-config', 'Conflict', detail, { sink: name, owner: 'alerts.sinks' });
  }
}

/** A sink the config file declares whose name an API- or CLI-added sink already holds (not applied). */
export interface ShadowedSink {
  name: string;
  createdBy: string;
  createdAt: string;
}

export interface AlertSinksOptions {
  /** which addresses a sink may reach */
  targets: TargetPolicy;
  /** names of the sinks the config file declares (alerts.sinks): the API may not take them */
  configNames?: string[];
}

const NAME = /^[\w.-]{1,64}$/;
const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

function httpUrl(value: string, field: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidInput(`${field} must be an http(s) URL`, field);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new InvalidInput(`${field} must be an http(s) URL`, field);
  return u;
}

/** A path segment that reads like a key (many hooks put theirs in the path): long, URL-safe, letters and digits. */
const looksLikeKey = (segment: string) =>
  segment.length >= 16 && /^[\w.~-]+$/.test(segment) && /\d/.test(segment) && /[a-z]/i.test(segment);

/** The URL without what may be a credential: user and password, key-like path segments, the query's values. */
export function redactUrl(u: URL): string {
  const r = new URL(u.toString());
  if (r.username || r.password) {
    r.username = 'redacted';
    r.password = '';
  }
  r.pathname = r.pathname
    .split('/')
    .map((segment) => (looksLikeKey(decodeURIComponent(segment)) ? 'redacted' : segment))
    .join('/');
  const names = [...r.searchParams.keys()];
  if (names.length || r.search === '?') {
    r.search = '';
    for (const n of new Set(names)) r.searchParams.append(n, 'redacted');
  }
  r.hash = '';
  return r.toString();
}

function checked(input: SinkInput): { settings: Record<string, unknown>; secret: string } {
  if (!NAME.test(input.name)) throw new InvalidInput('name must be 1-64 letters, digits, . _ -', 'name');
  if (input.minSeverity !== undefined && !SEVERITIES.includes(input.minSeverity))
    throw new InvalidInput(`minSeverity must be one of ${SEVERITIES.join(', ')}`, 'minSeverity');
  switch (input.type) {
    case 'webhook': {
      const u = httpUrl(input.url, 'url');
      if (typeof input.secret !== 'string' || input.secret.length < 32)
        throw new InvalidInput(
          'secret (the HMAC key receivers verify with) must have at least 32 characters',
          'secret',
        );
      // A URL that carries a credential (user:password@, ?token=…) is sealed with the HMAC key; what is
      // shown (list, API, audit) is the URL with those parts redacted.
      const shown = redactUrl(u);
      if (shown === u.toString()) return { settings: { url: u.toString() }, secret: input.secret };
      return {
        settings: { url: shown, urlSealed: true },
        secret: JSON.stringify({ hmacKey: input.secret, url: u.toString() }),
      };
    }
    case 'slack': {
      const u = httpUrl(input.url, 'url');
      return { settings: { host: u.host, hint: `…${u.pathname.slice(-4)}` }, secret: u.toString() };
    }
    case 'email': {
      if (!input.host || !/^[\w.-]+$/.test(input.host))
        throw new InvalidInput('host must be a host name or address', 'host');
      if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535)
        throw new InvalidInput('port must be 1-65535', 'port');
      if (!EMAIL.test(input.from)) throw new InvalidInput('from must be an e-mail address', 'from');
      if (!Array.isArray(input.to) || input.to.length === 0 || !input.to.every((t) => EMAIL.test(t)))
        throw new InvalidInput('to must be one or more e-mail addresses', 'to');
      // A sink with a user sends its password on every delivery: never in plaintext. TLS is required
      // (STARTTLS, or TLS from the first byte with secure) and cannot be turned off, not even for a
      // relay on loopback or the LAN (docs/activity.md "Sinks", ADR 0055).
      const secure = input.secure ?? input.port === 465;
      const authenticates = Boolean(input.user);
      if (authenticates && input.requireTls === false && !secure)
        throw new InvalidInput(
          'a sink with a user sends its SMTP password: requireTls cannot be false (use STARTTLS, or secure for TLS from the first byte; drop the user for a relay without authentication)',
          'requireTls',
        );
      return {
        settings: {
          host: input.host,
          port: input.port,
          secure,
          requireTls: input.requireTls ?? authenticates,
          user: input.user || null,
          from: input.from,
          to: input.to,
        },
        secret: input.password ?? '',
      };
    }
    default:
      throw new InvalidInput('type must be webhook, slack or email', 'type');
  }
}

/** The host a sink connects to. */
function hostOf(input: SinkInput): string {
  return input.type === 'email' ? input.host : new URL(input.url).hostname;
}

const viewOf = (r: AlertSinksTable): SinkView => ({
  name: r.name,
  type: r.type,
  minSeverity: r.min_severity as Severity,
  settings: JSON.parse(r.settings) as Record<string, unknown>,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/** Where alerts go. Secrets (HMAC key, Slack URL, SMTP password) are sealed under the master key. */
export class AlertSinks {
  readonly #configNames: Set<string>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
    private readonly options: AlertSinksOptions,
  ) {
    this.#configNames = new Set(options.configNames ?? []);
  }

  /** Adds a sink from the API or CLI: its host must resolve to addresses sinks may reach. */
  async add(ctx: AuditContext, input: SinkInput): Promise<SinkView> {
    const { settings, secret } = checked(input);
    if (this.#configNames.has(input.name))
      throw new AlertSinkDeclaredInConfig(
        input.name,
        `the config file declares an alert sink named ${input.name} (alerts.sinks): change it there, or choose another name`,
      );
    const taken = await this.store.db
      .selectFrom('alert_sinks')
      .select('name')
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (!taken) await this.#checkTarget(input);
    const row = this.#row(input, settings, secret, actorName(ctx.actor));
    // Two adds of one name at once: on PostgreSQL (read committed) both may find the name free and the
    // second insert hits the primary key; that is the same conflict as finding it taken.
    const conflict = () => new Conflict(`an alert sink named ${input.name} exists; remove it first`);
    await this.store.db
      .transaction()
      .execute(async (trx) => {
        const exists = await trx
          .selectFrom('alert_sinks')
          .select(['name', 'created_by'])
          .where('name', '=', input.name)
          .executeTakeFirst();
        if (exists?.created_by === CONFIG)
          throw new AlertSinkDeclaredInConfig(
            input.name,
            `an alert sink named ${input.name} was declared in a config file (alerts.sinks): change it there, or choose another name`,
          );
        if (exists) throw conflict();
        await this.#insert(trx, ctx, row, settings);
      })
      .catch((err: unknown) => {
        throw isUniqueViolation(err) ? conflict() : err;
      });
    return viewOf(row);
  }

  /** Refuses a target that resolves to an internal address; one that does not resolve now is kept. */
  async #checkTarget(input: SinkInput): Promise<void> {
    try {
      await checkedAddresses(hostOf(input), this.options.targets);
    } catch (err) {
      if (!(err instanceof AlertSinkTargetUnresolvable)) throw err;
    }
  }

  #row(
    input: SinkInput,
    settings: Record<string, unknown>,
    secret: string,
    createdBy: string,
  ): AlertSinksTable {
    return {
      name: input.name,
      type: input.type,
      settings: JSON.stringify(settings),
      secret_sealed: this.masterKey.seal(secret, sealContext(input.name)),
      min_severity: input.minSeverity ?? 'low',
      created_at: iso(this.clock.now()),
      created_by: createdBy,
    };
  }

  async #insert(
    trx: Kysely<Database>,
    ctx: AuditContext,
    row: AlertSinksTable,
    settings: Record<string, unknown>,
  ): Promise<void> {
    await trx.insertInto('alert_sinks').values(row).execute();
    await appendAudit(trx, this.store.engine, this.clock, {
      type: 'alert-sink.added',
      outcome: 'success',
      actor: ctx.actor,
      subject: row.name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: { type: row.type, minSeverity: row.min_severity, ...settings },
    });
  }

  async #delete(trx: Kysely<Database>, ctx: AuditContext, name: string): Promise<boolean> {
    const res = await trx.deleteFrom('alert_sinks').where('name', '=', name).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) return false;
    await appendAudit(trx, this.store.engine, this.clock, {
      type: 'alert-sink.removed',
      outcome: 'success',
      actor: ctx.actor,
      subject: name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: {},
    });
    return true;
  }

  /**
   * Makes the sinks declared in the config file exist as declared (at start): a new or changed one is
   * (re)written with its secret sealed, one no longer declared but added from the config is removed.
   * Sinks added through the API or CLI are left alone, also when the config declares their name: that
   * config sink is not applied and is returned (logged at start, shown in /readyz) until one of the two
   * is renamed or removed. Everything is one transaction that holds the table's write lock, so two
   * instances starting together apply the config once, in turn, and leave exactly the declared sinks.
   * The secret is read from its reference here and never logged or audited.
   */
  async syncFromConfig(
    declared: ConfigSink[],
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<{ shadowed: ShadowedSink[] }> {
    const ctx: AuditContext = { actor: systemActor('config') };
    // Secrets, settings and targets first, outside the transaction (DNS may take a while).
    const wanted: Array<{ input: SinkInput; settings: Record<string, unknown>; secret: string }> = [];
    for (const d of declared) {
      const input = this.#inputOf(d, env);
      const { settings, secret } = checked(input);
      try {
        await this.#checkTarget(input);
      } catch (err) {
        // An internal target is the config's mistake: say so at start, naming the sink.
        throw new InvalidInput(`alerts.sinks ${d.name}: ${(err as Error).message}`, 'alerts.sinks');
      }
      wanted.push({ input, settings, secret });
    }
    return this.store.db.transaction().execute(async (trx) => {
      // SQLite transactions begin immediate (the write lock); PostgreSQL needs it said. Readers
      // (deliveries) are not blocked; a second instance's sync waits here and then sees this one's rows.
      if (this.store.engine === 'postgres')
        await sql`lock table alert_sinks in share row exclusive mode`.execute(trx);
      const existing = await trx.selectFrom('alert_sinks').selectAll().execute();
      const shadowed: ShadowedSink[] = [];
      for (const { input, settings, secret } of wanted) {
        const row = existing.find((r) => r.name === input.name);
        if (row && row.created_by !== CONFIG) {
          shadowed.push({ name: row.name, createdBy: row.created_by, createdAt: row.created_at });
          continue;
        }
        if (row) {
          const same =
            row.type === input.type &&
            row.min_severity === (input.minSeverity ?? 'low') &&
            row.settings === JSON.stringify(settings) &&
            this.#secretOf(row) === secret;
          if (same) continue;
          await this.#delete(trx, ctx, row.name);
        }
        await this.#insert(trx, ctx, this.#row(input, settings, secret, CONFIG), settings);
      }
      for (const r of existing)
        if (r.created_by === CONFIG && !declared.some((d) => d.name === r.name))
          await this.#delete(trx, ctx, r.name);
      return { shadowed };
    });
  }

  /** Config sinks whose name an API- or CLI-added sink holds (for /readyz). */
  async shadowed(): Promise<ShadowedSink[]> {
    if (this.#configNames.size === 0) return [];
    const rows = await this.store.db
      .selectFrom('alert_sinks')
      .select(['name', 'created_by', 'created_at'])
      .where('name', 'in', [...this.#configNames])
      .where('created_by', '!=', CONFIG)
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ name: r.name, createdBy: r.created_by, createdAt: r.created_at }));
  }

  #inputOf(d: ConfigSink, env: NodeJS.ProcessEnv): SinkInput {
    let secret = '';
    if (d.secretEnv) {
      const v = env[d.secretEnv];
      if (v === undefined || v === '')
        throw new InvalidInput(
          `alerts.sinks ${d.name}: environment variable ${d.secretEnv} is not set`,
          'secretEnv',
        );
      secret = v;
    } else if (d.secretFile) {
      try {
        secret = readFileSync(d.secretFile, 'utf8').trim();
      } catch {
        throw new InvalidInput(`alerts.sinks ${d.name}: cannot read ${d.secretFile}`, 'secretFile');
      }
    }
    return {
      name: d.name,
      type: d.type,
      minSeverity: d.minSeverity,
      ...(d.type === 'webhook'
        ? { url: d.url ?? '', secret }
        : d.type === 'slack'
          ? { url: secret || (d.url ?? '') }
          : {
              host: d.host ?? '',
              port: d.port ?? 587,
              secure: d.secure,
              requireTls: d.requireTls,
              user: d.user,
              password: secret || undefined,
              from: d.from ?? '',
              to: d.to ?? [],
            }),
    } as SinkInput;
  }

  #secretOf(row: AlertSinksTable): string {
    return this.masterKey.unseal(row.secret_sealed, sealContext(row.name));
  }

  async list(): Promise<SinkView[]> {
    return (await this.store.db.selectFrom('alert_sinks').selectAll().orderBy('name').execute()).map(viewOf);
  }

  /** The sinks alerts fan out to, read in the raising transaction. */
  async filters(trx: Kysely<Database>): Promise<SinkFilter[]> {
    const rows = await trx
      .selectFrom('alert_sinks')
      .select(['name', 'min_severity'])
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ name: r.name, minSeverity: r.min_severity as Severity }));
  }

  /** With its secret; null when removed since. */
  async resolve(name: string): Promise<ResolvedSink | null> {
    const row = await this.store.db
      .selectFrom('alert_sinks')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) return null;
    const view = viewOf(row);
    const secret = this.masterKey.unseal(row.secret_sealed, sealContext(row.name));
    if (view.settings.urlSealed === true) {
      const sealed = JSON.parse(secret) as { hmacKey: string; url: string };
      return { ...view, settings: { ...view.settings, url: sealed.url }, secret: sealed.hmacKey };
    }
    return { ...view, secret };
  }

  /** Removes a sink added through the API or CLI; one the config file declares is removed there. */
  async remove(ctx: AuditContext, name: string): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('alert_sinks')
        .select('created_by')
        .where('name', '=', name)
        .executeTakeFirst();
      if (row?.created_by === CONFIG)
        throw new AlertSinkDeclaredInConfig(
          name,
          `the alert sink ${name} is declared in the config file (alerts.sinks): remove it there (the next start removes it here)`,
        );
      if (!(await this.#delete(trx, ctx, name))) throw new NotFound('alert sink', name);
    });
  }
}
