import { readFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { type AuditContext, actorName, systemActor } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { Store } from '../../store/open.js';
import type { AlertSinksTable, Database } from '../../store/schema.js';
import { SEVERITIES, type Severity } from '../detections/finding.js';
import type { SinkFilter } from '../detections/service.js';

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
      return {
        settings: {
          host: input.host,
          port: input.port,
          secure: input.secure ?? input.port === 465,
          requireTls: input.requireTls ?? false,
          user: input.user ?? null,
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
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
  ) {}

  async add(ctx: AuditContext, input: SinkInput, createdBy?: string): Promise<SinkView> {
    const { settings, secret } = checked(input);
    const now = iso(this.clock.now());
    const row: AlertSinksTable = {
      name: input.name,
      type: input.type,
      settings: JSON.stringify(settings),
      secret_sealed: this.masterKey.seal(secret, sealContext(input.name)),
      min_severity: input.minSeverity ?? 'low',
      created_at: now,
      created_by: createdBy ?? actorName(ctx.actor),
    };
    await this.store.db.transaction().execute(async (trx) => {
      const exists = await trx
        .selectFrom('alert_sinks')
        .select('name')
        .where('name', '=', input.name)
        .executeTakeFirst();
      if (exists) throw new Conflict(`an alert sink named ${input.name} exists; remove it first`);
      await trx.insertInto('alert_sinks').values(row).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'alert-sink.added',
        outcome: 'success',
        actor: ctx.actor,
        subject: input.name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { type: input.type, minSeverity: row.min_severity, ...settings },
      });
    });
    return viewOf(row);
  }

  /**
   * Makes the sinks declared in the config file exist as declared (at start): a new or changed one is
   * (re)written with its secret sealed, one no longer declared but added from the config is removed.
   * Sinks added through the API or CLI are left alone. The secret is read from its reference here and
   * never logged or audited.
   */
  async syncFromConfig(declared: ConfigSink[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
    const ctx: AuditContext = { actor: systemActor('config') };
    const existing = await this.store.db.selectFrom('alert_sinks').selectAll().execute();
    for (const d of declared) {
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
      const input = {
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
      const { settings, secret: sealedSecret } = checked(input);
      const row = existing.find((r) => r.name === d.name);
      if (row) {
        const same =
          row.created_by === CONFIG &&
          row.type === d.type &&
          row.min_severity === (d.minSeverity ?? 'low') &&
          row.settings === JSON.stringify(settings) &&
          this.#secretOf(row) === sealedSecret;
        if (same) continue;
        await this.remove(ctx, d.name);
      }
      await this.add(ctx, input, CONFIG);
    }
    for (const r of existing)
      if (r.created_by === CONFIG && !declared.some((d) => d.name === r.name)) await this.remove(ctx, r.name);
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

  async remove(ctx: AuditContext, name: string): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('alert_sinks').where('name', '=', name).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw new NotFound('alert sink', name);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'alert-sink.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {},
      });
    });
  }
}
