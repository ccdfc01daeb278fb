import { type Kysely, PostgresAdapter, sql } from 'kysely';

// The audit ledger: events are appended without a shared row and sealed after commit into a Merkle
// tree (docs/audit.md, ADR 0025). An event's `seq` now comes from a sequence (PostgreSQL) or the rowid
// (SQLite) and only orders reads; its place in the tree, `leaf_index`, is given by the sequencer.
// The old `audit_head` row stays (older binaries read it) but is no longer written.
export async function up(db: Kysely<unknown>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  if (postgres) {
    await sql`create sequence if not exists audit_events_seq_seq owned by audit_events.seq`.execute(db);
    await sql`select setval('audit_events_seq_seq', coalesce((select max(seq) from audit_events), 0) + 1, false)`.execute(
      db,
    );
    await sql`alter table audit_events alter column seq set default nextval('audit_events_seq_seq')`.execute(
      db,
    );
  }
  await db.schema.alterTable('audit_events').addColumn('leaf_index', 'integer').execute();
  await db.schema.alterTable('audit_events').addColumn('leaf_hash', 'text').execute();
  await db.schema.createIndex('audit_events_leaf').unique().on('audit_events').column('leaf_index').execute();
  // What the sequencer looks for: a small partial index, empty whenever everything is sealed.
  await sql`create index audit_events_unsealed on audit_events (seq) where leaf_index is null`.execute(db);

  // Complete subtrees of the tree (level ≥ 1; level 0 is audit_events.leaf_hash): inclusion and
  // consistency proofs read O(log² n) of them instead of every leaf.
  await db.schema
    .createTable('audit_tree_nodes')
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('audit_tree_nodes_pk', ['level', 'idx'])
    .execute();

  // One signed tree head per sealed batch; `frontier` lets the next batch continue the tree.
  await db.schema
    .createTable('audit_tree_heads')
    .addColumn('tree_size', 'integer', (c) => c.primaryKey())
    .addColumn('root_hash', 'text', (c) => c.notNull())
    .addColumn('frontier', 'text', (c) => c.notNull()) // JSON: hex hashes of the right edge
    .addColumn('signed_at', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .execute();

  // Ed25519 keys that sign tree heads, the private half sealed under the master key.
  await db.schema
    .createTable('audit_signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey()) // SHA-256 of the SPKI, hex, first 32 characters
    .addColumn('public_key', 'text', (c) => c.notNull()) // SPKI PEM
    .addColumn('private_key_sealed', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // current | retired
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  // Who seals: one lease row, taken by a conditional update.
  await db.schema
    .createTable('audit_sequencer')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('holder', 'text')
    .addColumn('lease_until', 'text')
    .execute();
  await db
    .insertInto('audit_sequencer' as never)
    .values({ id: 1, holder: null, lease_until: null } as never)
    .execute();

  // Where signed heads were published, per destination (file, webhook, S3).
  await db.schema
    .createTable('audit_exports')
    .addColumn('destination', 'text', (c) => c.primaryKey())
    .addColumn('tree_size', 'integer', (c) => c.notNull()) // the newest head published there
    .addColumn('exported_at', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull()) // failures since the last success
    .addColumn('next_attempt_at', 'text')
    .addColumn('last_error', 'text')
    .execute();

  // Live instances: a heartbeat per process, so work a dead one claimed is taken back at once.
  await db.schema
    .createTable('worker_instances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('heartbeat_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'worker_instances',
    'audit_exports',
    'audit_sequencer',
    'audit_signing_keys',
    'audit_tree_heads',
    'audit_tree_nodes',
  ])
    await db.schema.dropTable(t).execute();
  await db.schema.dropIndex('audit_events_unsealed').execute();
  await db.schema.dropIndex('audit_events_leaf').execute();
  await db.schema.alterTable('audit_events').dropColumn('leaf_hash').execute();
  await db.schema.alterTable('audit_events').dropColumn('leaf_index').execute();
}
