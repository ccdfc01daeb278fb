import type { AppAssignments } from '../access/app-assignments.js';
import type { PrincipalRef } from '../access/assignments.js';
import { type AuditContext, actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { Conflict, InvalidInput, NotFound } from '../errors.js';
import type { Store } from '../store/open.js';
import type { ProxyAppsTable } from '../store/schema.js';

/** An internal HTTP application the proxy serves at its own origin. */
export interface ProxyApp {
  name: string;
  /** where requests go, e.g. http://10.0.3.7:3000 (a path here prefixes every request's path) */
  upstream: string;
  /** the origin people open, e.g. https://grafana.apps.example.com; the proxy routes by its Host */
  url: string;
  /** names of the groups that may use it; empty = nobody, unless openToAll */
  groups: string[];
  /** while no group is assigned: every active user may use it (true) or nobody (false) */
  openToAll: boolean;
  createdAt: string;
  updatedAt: string;
  createdBy: string;
}

export interface ProxyAppInput {
  upstream: string;
  url: string;
  groups: PrincipalRef[];
  /** open to every active user while no group is assigned; omitted: false for a new app, unchanged otherwise */
  openToAll?: boolean;
}

export const APP_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

function httpUrl(text: string, field: string): URL {
  const url = URL.parse(text);
  if (!url || !/^https?:$/.test(url.protocol) || url.username || url.password || url.hash || url.search)
    throw new InvalidInput(
      `${JSON.stringify(text)} is not an http(s) URL without credentials, query or fragment`,
      field,
    );
  return url;
}

/** The app's origin as the proxy compares it with a request's Host: scheme://host[:port]. */
export function normalizePublicUrl(text: string): string {
  const url = httpUrl(text, 'url');
  if (url.pathname !== '/')
    throw new InvalidInput(`url ${text}: an app has its own origin, without a path`, 'url');
  return url.origin;
}

export function normalizeUpstream(text: string): string {
  const url = httpUrl(text, 'upstream');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** The registry of proxied applications; changes and their group assignments commit together. */
export class ProxyApps {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly appAssignments: AppAssignments,
  ) {}

  async list(): Promise<ProxyApp[]> {
    const rows = await this.store.db.selectFrom('proxy_apps').selectAll().orderBy('name').execute();
    return Promise.all(rows.map((r) => this.#withGroups(r)));
  }

  async get(name: string): Promise<ProxyApp> {
    const row = await this.store.db
      .selectFrom('proxy_apps')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) throw new NotFound('proxy app', name);
    return this.#withGroups(row);
  }

  /** The app whose public URL has this host (a request's Host header), or null (the proxy answers 404). */
  async byHost(host: string): Promise<Pick<ProxyApp, 'name' | 'upstream' | 'url'> | null> {
    if (!/^[\w.:[\]-]{1,260}$/.test(host)) return null;
    const h = host.toLowerCase();
    const row = await this.store.db
      .selectFrom('proxy_apps')
      .select(['name', 'upstream_url', 'public_url'])
      .where('public_url', 'in', [`https://${h}`, `http://${h}`])
      .executeTakeFirst();
    return row ? { name: row.name, upstream: row.upstream_url, url: row.public_url } : null;
  }

  /** Every public origin: the proxy's OpenID client accepts `<origin>/.ferry/callback` for each. */
  async origins(): Promise<string[]> {
    const rows = await this.store.db.selectFrom('proxy_apps').select('public_url').execute();
    return rows.map((r) => r.public_url);
  }

  /** Creates the app or replaces its upstream, URL and groups; idempotent. */
  async set(
    ctx: AuditContext,
    name: string,
    input: ProxyAppInput,
  ): Promise<{ app: ProxyApp; created: boolean; changed: boolean }> {
    if (!APP_NAME_PATTERN.test(name))
      throw new InvalidInput(
        `app name ${JSON.stringify(name)}: use lower-case letters, digits and dashes (at most 63)`,
        'name',
      );
    const upstream = normalizeUpstream(input.upstream);
    const url = normalizePublicUrl(input.url);
    const result = await this.store.db.transaction().execute(async (trx) => {
      const clash = await trx
        .selectFrom('proxy_apps')
        .select('name')
        .where('public_url', '=', url)
        .where('name', '!=', name)
        .executeTakeFirst();
      if (clash) throw new Conflict(`${url} already serves the app ${clash.name}`);
      const existing = await trx
        .selectFrom('proxy_apps')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      const now = iso(this.clock.now());
      const openToAll = input.openToAll ?? (existing ? Number(existing.open_to_all) === 1 : false);
      const wasOpen = existing ? Number(existing.open_to_all) === 1 : undefined;
      let changed = false;
      if (!existing) {
        await trx
          .insertInto('proxy_apps')
          .values({
            name,
            upstream_url: upstream,
            public_url: url,
            created_at: now,
            updated_at: now,
            created_by: actorName(ctx.actor),
            open_to_all: openToAll ? 1 : 0,
          })
          .execute();
        changed = true;
      } else if (existing.upstream_url !== upstream || existing.public_url !== url || wasOpen !== openToAll) {
        await trx
          .updateTable('proxy_apps')
          .set({ upstream_url: upstream, public_url: url, open_to_all: openToAll ? 1 : 0, updated_at: now })
          .where('name', '=', name)
          .execute();
        changed = true;
      }
      if (changed)
        await appendAudit(trx, this.store.engine, this.clock, {
          type: existing ? 'proxy-app.updated' : 'proxy-app.added',
          outcome: 'success',
          actor: ctx.actor,
          subject: `app:${name}`,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: {
            upstream,
            url,
            openToAll,
            ...(existing
              ? {
                  previous: { upstream: existing.upstream_url, url: existing.public_url, openToAll: wasOpen },
                }
              : {}),
          },
        });
      const groupsChanged = await this.appAssignments.replace(trx, ctx, name, input.groups);
      return { created: !existing, changed: changed || groupsChanged };
    });
    return { app: await this.get(name), ...result };
  }

  /** For decide(): whether `app:<name>` is open to all while no group is assigned (undefined: no such app). */
  async openToAll(name: string): Promise<boolean | undefined> {
    const row = await this.store.db
      .selectFrom('proxy_apps')
      .select('open_to_all')
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? Number(row.open_to_all) === 1 : undefined;
  }

  async remove(ctx: AuditContext, name: string): Promise<ProxyApp> {
    const app = await this.get(name);
    await this.store.db.transaction().execute(async (trx) => {
      const gone = await trx.deleteFrom('proxy_apps').where('name', '=', name).executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) throw new NotFound('proxy app', name);
      await this.appAssignments.removeAll(trx, name);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'proxy-app.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `app:${name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { upstream: app.upstream, url: app.url, groups: app.groups },
      });
    });
    return app;
  }

  async #withGroups(r: ProxyAppsTable): Promise<ProxyApp> {
    const groups = await this.appAssignments.groupsOf(r.name);
    return {
      name: r.name,
      upstream: r.upstream_url,
      url: r.public_url,
      groups: groups.map((g) => g.name),
      openToAll: Number(r.open_to_all) === 1,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      createdBy: r.created_by,
    };
  }
}
