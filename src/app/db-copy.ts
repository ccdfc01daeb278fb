import { type Kysely, sql } from 'kysely';
import { migrateToLatest } from '../store/migrate.js';
import { engineOf, openStore, redactUrl, type Store } from '../store/open.js';
import { OperatorError } from './commands.js';

const MIGRATION_TABLES = new Set(['ferry_migrations', 'ferry_migrations_lock']);
/** PostgreSQL allows 65,535 parameters per statement. */
const MAX_PARAMETERS = 60_000;

export interface CopyResult {
  tables: number;
  rows: number;
}

/**
 * `ferry db copy --to postgres://…`: moves a SQLite installation to PostgreSQL as it is — sessions,
 * sealed keys, tokens and the audit ledger row for row — in one PostgreSQL transaction. The target
 * is migrated first and must hold no installation yet (no audit event); Ferry must be stopped.
 */
export async function copyDatabase(fromUrl: string, toUrl: string): Promise<CopyResult> {
  if (engineOf(fromUrl) !== 'sqlite' || engineOf(toUrl) !== 'postgres') {
    throw new OperatorError(
      'ferry db copy moves a SQLite installation (database.url) to PostgreSQL (--to postgres://…)',
    );
  }
  const source = openStore(fromUrl, { poolSize: 1 });
  const target = openStore(toUrl, { poolSize: 2, onIdleError: () => {} });
  try {
    const applied = await migrateToLatest(source);
    if (applied.length)
      throw new OperatorError(
        `the SQLite database was behind (${applied.join(', ')} applied); run the copy again`,
      );
    await migrateToLatest(target);
    const tables = await orderedTables(source);
    const db = target.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
    const existing = await sql<{ n: string }>`select count(*) as n from audit_events`.execute(target.db);
    if (Number(existing.rows[0]?.n ?? 0) > 0) {
      throw new OperatorError(
        `${redactUrl(toUrl)} already holds a Ferry installation; copy into an empty database`,
      );
    }
    let rows = 0;
    await db.transaction().execute(async (trx) => {
      // Rows the migrations seeded (singletons such as counters) are replaced by the source's.
      for (const table of [...tables].reverse()) await trx.deleteFrom(table).execute();
      for (const table of tables) {
        const all = (await (source.db as unknown as Kysely<Record<string, Record<string, unknown>>>)
          .selectFrom(table)
          .selectAll()
          .execute()) as Array<Record<string, unknown>>;
        if (all.length === 0) continue;
        const perBatch = Math.max(1, Math.floor(MAX_PARAMETERS / Object.keys(all[0]!).length));
        for (let i = 0; i < all.length; i += perBatch) {
          await trx
            .insertInto(table)
            .values(all.slice(i, i + perBatch))
            .execute();
        }
        rows += all.length;
      }
      // Appends take `seq` from a sequence (0019_audit_ledger): continue after the copied events.
      await sql`select setval('audit_events_seq_seq', coalesce((select max(seq) from audit_events), 0) + 1, false)`.execute(
        trx,
      );
    });
    return { tables: tables.length, rows };
  } finally {
    await source.close();
    await target.close();
  }
}

/** Every table of the installation, parents before the tables whose foreign keys name them. */
async function orderedTables(store: Store): Promise<string[]> {
  const names = (
    await sql<{
      name: string;
    }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`.execute(
      store.db,
    )
  ).rows
    .map((r) => r.name)
    .filter((n) => !MIGRATION_TABLES.has(n));
  const parents = new Map<string, Set<string>>();
  for (const name of names) {
    const fks = await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${name})`.execute(
      store.db,
    );
    parents.set(name, new Set(fks.rows.map((r) => r.table).filter((t) => t !== name)));
  }
  const ordered: string[] = [];
  const placed = new Set<string>();
  while (ordered.length < names.length) {
    const ready = names.filter(
      (n) => !placed.has(n) && [...parents.get(n)!].every((p) => placed.has(p) || !parents.has(p)),
    );
    if (ready.length === 0) throw new Error('foreign keys form a cycle between tables');
    for (const n of ready) {
      ordered.push(n);
      placed.add(n);
    }
  }
  return ordered;
}
