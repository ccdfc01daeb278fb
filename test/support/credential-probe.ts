import { sql } from 'kysely';
import type { TestFerry } from './ferry.js';

// A copy of a Ferry database as an attacker would read it, and every place Ferry accepts a bearer
// value: the two halves of "nothing at rest is usable" (issue 14) and "no secret in the audit trail".

/** Every value of every table, as text, with JSON string leaves and token-like runs inside it. */
export async function copyDatabase(ferry: TestFerry): Promise<Map<string, string>> {
  const { db, engine } = ferry.services.store;
  const tables =
    engine === 'postgres'
      ? await sql<{ name: string }>`select table_name as name from information_schema.tables
          where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(db)
      : await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db);
  const values = new Map<string, string>(); // value → where it was found
  const add = (v: string, where: string) => {
    if (v.length >= 16 && v.length <= 2048 && !values.has(v)) values.set(v, where);
  };
  const leaves = (v: unknown, where: string): void => {
    if (typeof v === 'string') {
      add(v, where);
      for (const run of v.match(/[A-Za-z0-9_.~+/=-]{16,}/g) ?? []) add(run, where);
    } else if (Array.isArray(v)) for (const x of v) leaves(x, where);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) leaves(x, where);
  };
  for (const { name } of tables.rows) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
    for (const row of rows.rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        const text = String(value);
        const where = `${name}.${column}`;
        leaves(text, where);
        try {
          leaves(JSON.parse(text), where);
        } catch {
          // not JSON
        }
      }
    }
  }
  return values;
}

/** The raw text of every cell, to look for a known secret inside it. */
export async function everyCell(ferry: TestFerry): Promise<Array<{ where: string; text: string }>> {
  const { db, engine } = ferry.services.store;
  const tables =
    engine === 'postgres'
      ? await sql<{ name: string }>`select table_name as name from information_schema.tables
          where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(db)
      : await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db);
  const cells: Array<{ where: string; text: string }> = [];
  for (const { name } of tables.rows) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
    for (const row of rows.rows)
      for (const [column, value] of Object.entries(row))
        if (value !== null && value !== undefined)
          cells.push({ where: `${name}.${column}`, text: String(value) });
  }
  return cells;
}

/** Where a value is accepted as a credential: the names of the endpoints that took it. */
export function credentialProbe(ferry: TestFerry, rp: { clientId: string; secret: string }) {
  const url = (p: string) => new URL(p, ferry.url);
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(rp.clientId)}:${encodeURIComponent(rp.secret)}`).toString('base64')}`;
  const form = (body: Record<string, string>, auth?: string) =>
    fetch(url('/oidc/token'), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(auth ? { authorization: auth } : {}),
      },
      body: new URLSearchParams(body),
    });
  const bearer = (v: string) => ({ authorization: `Bearer ${v}` });
  // a token endpoint answer that shows the value was found: tokens, or a pending/denied device code
  const found = async (res: Response) => {
    if (res.ok) return true;
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    return ['authorization_pending', 'slow_down', 'access_denied', 'expired_token'].includes(
      body.error ?? '',
    );
  };
  const bearerSafe = (v: string) => /^[\w.~+/-]+=*$/.test(v);
  return async (v: string): Promise<string[]> => {
    const accepted: string[] = [];
    const checks: Array<[string, () => Promise<boolean>]> = [
      [
        'token endpoint: refresh (relying party)',
        async () => found(await form({ grant_type: 'refresh_token', refresh_token: v }, basic)),
      ],
      [
        'token endpoint: refresh (CLI)',
        async () =>
          found(await form({ grant_type: 'refresh_token', refresh_token: v, client_id: 'ferry-cli' })),
      ],
      [
        'token endpoint: device code (CLI)',
        async () =>
          found(
            await form({
              grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
              device_code: v,
              client_id: 'ferry-cli',
            }),
          ),
      ],
      [
        'introspection',
        async () => {
          const res = await fetch(url('/oidc/token/introspection'), {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
            body: new URLSearchParams({ token: v }),
          });
          return res.ok && ((await res.json()) as { active?: boolean }).active === true;
        },
      ],
    ];
    if (bearerSafe(v)) {
      checks.push(
        ['userinfo', async () => (await fetch(url('/oidc/me'), { headers: bearer(v) })).ok],
        ['admin API', async () => (await fetch(url('/api/v1/users'), { headers: bearer(v) })).status !== 401],
        ['SCIM', async () => (await fetch(url('/scim/v2/Users'), { headers: bearer(v) })).status !== 401],
        [
          'API as a person or workload',
          async () => (await fetch(url('/api/v1/aws/entitlements'), { headers: bearer(v) })).status !== 401,
        ],
        [
          'session cookie',
          async () =>
            (await fetch(url('/api/v1/aws/entitlements'), { headers: { cookie: `ferry_session=${v}` } }))
              .status !== 401,
        ],
      );
    }
    for (const [name, check] of checks) if (await check()) accepted.push(name);
    return accepted;
  };
}
