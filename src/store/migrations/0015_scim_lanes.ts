import type { Kysely } from 'kysely';

// SCIM stays in its lane (issue 14 point 11): which provisioning connection manages each user and
// group, and whether a connection may set passwords. Objects a connection created before this
// migration are found in the audit trail (`user.created` / `group.created` with the connection as
// actor); everything else (created by an admin, the demo or a tenant file) belongs to no connection.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('scim_managed_objects')
    .addColumn('kind', 'text', (c) => c.notNull()) // 'user' | 'group'
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('connection_id', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull()) // 'provisioned' (created over SCIM) | 'handed' (by an admin)
    .addColumn('since', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('scim_managed_objects_pk', ['kind', 'object_id'])
    .execute();
  await db.schema
    .createIndex('scim_managed_objects_connection')
    .on('scim_managed_objects')
    .columns(['connection_id', 'kind'])
    .execute();
  await db.schema
    .alterTable('scim_connections')
    .addColumn('password_writes', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  const k = db as unknown as Kysely<Backfill>;
  const created = await k
    .selectFrom('audit_events')
    .select(['type', 'actor', 'data', 'time'])
    .where('type', 'in', ['user.created', 'group.created'])
    .orderBy('seq')
    .execute();
  const live = {
    user: new Set((await k.selectFrom('users').select('id').execute()).map((r) => r.id)),
    group: new Set((await k.selectFrom('groups').select('id').execute()).map((r) => r.id)),
  };
  for (const e of created) {
    const actor = JSON.parse(e.actor) as { type?: string; id?: string };
    if (actor.type !== 'scim-connection' || !actor.id) continue;
    const data = JSON.parse(e.data) as { userId?: string; groupId?: string };
    const kind = e.type === 'user.created' ? 'user' : 'group';
    const objectId = kind === 'user' ? data.userId : data.groupId;
    if (!objectId || !live[kind].has(objectId)) continue;
    live[kind].delete(objectId); // the first creation wins; ids are never reused
    await k
      .insertInto('scim_managed_objects')
      .values({ kind, object_id: objectId, connection_id: actor.id, origin: 'provisioned', since: e.time })
      .execute();
  }
}

interface Backfill {
  audit_events: { seq: number; type: string; actor: string; data: string; time: string };
  users: { id: string };
  groups: { id: string };
  scim_managed_objects: {
    kind: string;
    object_id: string;
    connection_id: string;
    origin: string;
    since: string;
  };
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('scim_managed_objects').execute();
  await db.schema.alterTable('scim_connections').dropColumn('password_writes').execute();
}
