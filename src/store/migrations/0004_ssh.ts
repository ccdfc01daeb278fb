import type { Kysely } from 'kysely';

// The SSH certificate authority: its keys, the counter its certificate serials come from, and the
// group → Linux login mappings decide() reads. Portable column types only, as in 0001.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('ssh_ca_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('use', 'text', (c) => c.notNull()) // user | host
    .addColumn('algorithm', 'text', (c) => c.notNull()) // ssh-ed25519 | rsa-sha2-512
    .addColumn('private_key_sealed', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull()) // OpenSSH line, without comment
    .addColumn('state', 'text', (c) => c.notNull()) // next | current | retired
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('activated_at', 'text')
    .addColumn('retired_at', 'text')
    .execute();
  await db.schema
    .createIndex('ssh_ca_keys_use_state')
    .on('ssh_ca_keys')
    .columns(['use', 'algorithm', 'state'])
    .execute();

  // One row: the last serial handed out. Incremented inside the issuing transaction, so serials are
  // unique across instances (PostgreSQL row lock, SQLite's write lock).
  await db.schema
    .createTable('ssh_serials')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('last_serial', 'bigint', (c) => c.notNull())
    .execute();
  await (db as Kysely<{ ssh_serials: { id: number; last_serial: number } }>)
    .insertInto('ssh_serials')
    .values({ id: 1, last_serial: 0 })
    .execute();

  await db.schema
    .createTable('ssh_logins')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
    .addColumn('host_pattern', 'text', (c) => c.notNull()) // glob: *.dev.internal, * for every host
    .addColumn('logins', 'text', (c) => c.notNull()) // JSON array of Linux principals
    .addColumn('port_forwarding', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('agent_forwarding', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_duration', 'integer') // seconds; null = the configured default
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('ssh_logins_unique', ['group_id', 'host_pattern'])
    .execute();

  await db.schema
    .createIndex('issued_credentials_kind_revoked')
    .on('issued_credentials')
    .columns(['kind', 'revoked_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('issued_credentials_kind_revoked').ifExists().execute();
  for (const t of ['ssh_logins', 'ssh_serials', 'ssh_ca_keys']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
