import type { Kysely } from 'kysely';
import type { Store } from '../../store/open.js';
import type { Database } from '../../store/schema.js';
import { attributesRead, type Filter, matches, parseFilter } from './filter.js';
import { filterToSql } from './filter-sql.js';
import type { ScimLane } from './lane.js';
import { type Projection, parseProjection, project, wants } from './projection.js';
import { type ListQuery, listResponse, type Page, pageOf, searchPage } from './request.js';
import type { ResourceSchema } from './schema.js';

/** What /Users and /Groups differ in when they read: the table, its sort key, and the attribute kept in group_members. */
export interface ResourceTable<Row, Ref> {
  schema: ResourceSchema;
  table: 'users' | 'groups';
  /** the case-folded column lists are ordered (and paged after) by */
  sortKey: 'user_name_key' | 'display_name_key';
  /** the multi-valued attribute read from group_members: User.groups, Group.members */
  related: 'groups' | 'members';
  relatedOf(db: Kysely<Database>, ids: string[]): Promise<Map<string, Ref[]>>;
  toDoc(row: Row, related: Ref[]): Record<string, unknown>;
}

/**
 * The read side both SCIM resources share: documents, GET, and list with filter and paging. Simple
 * filters run as SQL on indexed columns; the rest are narrowed by SQL and checked in memory, batch by
 * batch, counting every match.
 */
export class ResourceReader<Row extends { id: string; version: number | string }, Ref> {
  constructor(
    private readonly store: Store,
    private readonly lane: ScimLane,
    private readonly t: ResourceTable<Row, Ref>,
  ) {}

  async docs(db: Kysely<Database>, rows: Row[], withRelated: boolean): Promise<Record<string, unknown>[]> {
    const related = withRelated
      ? await this.t.relatedOf(
          db,
          rows.map((r) => r.id),
        )
      : new Map<string, Ref[]>();
    return rows.map((r) => this.t.toDoc(r, related.get(r.id) ?? []));
  }

  async get(row: Row, projection: Projection): Promise<{ doc: Record<string, unknown>; version: number }> {
    const [doc] = await this.docs(this.store.db, [row], wants(projection, this.t.related));
    return { doc: project(this.t.schema, doc!, projection), version: Number(row.version) };
  }

  async list(q: ListQuery) {
    const { schema } = this.t;
    const page = pageOf(q);
    const projection = parseProjection(schema, q.attributes, q.excludedAttributes);
    const filter =
      q.filter !== undefined && q.filter.trim() !== '' ? parseFilter(schema, q.filter) : undefined;
    const { rows, total } = await this.find(filter, page);
    const docs = await this.docs(this.store.db, rows, wants(projection, this.t.related));
    return listResponse(
      total,
      page,
      docs.map((d) => project(schema, d, projection)),
    );
  }

  private async find(filter: Filter | undefined, page: Page): Promise<{ rows: Row[]; total: number }> {
    const { db } = this.store;
    const { schema, sortKey, related } = this.t;
    const sqlFilter = filter ? filterToSql(schema.name, this.store.engine, filter) : undefined;
    // One code path for both tables: typed as `users`, which has every column used here under these names.
    const table = this.t.table as 'users';
    const key = sortKey as 'user_name_key';
    let base = db
      .selectFrom(table)
      .where(
        this.lane.isManaged(this.t.table === 'users' ? 'user' : 'group', `${this.t.table}.id` as 'users.id'),
      );
    if (sqlFilter?.where) base = base.where(sqlFilter.where);
    const needRelated = filter ? attributesRead(filter).some((r) => r.attr.name === related) : false;
    return searchPage<Row>(page, !filter || sqlFilter!.exact, {
      rows: async ({ limit, offset, after }) => {
        let q = base.selectAll().orderBy(key).limit(limit);
        if (offset) q = q.offset(offset);
        if (after !== undefined) q = q.where(key, '>', after);
        return (await q.execute()) as unknown as Row[];
      },
      count: async () =>
        Number(
          (await base.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n,
        ),
      sortKey: (row) => (row as unknown as Record<string, string>)[sortKey]!,
      matching: async (batch) =>
        (await this.docs(db, batch, needRelated)).map((doc) => matches(schema, doc, filter!)),
    });
  }
}
