import { type Expression, type RawBuilder, type SqlBool, sql } from 'kysely';
import type { Engine } from '../../store/open.js';
import type { CompareOp, Filter, FilterValue } from './filter.js';
import { type AttrRef, ENTERPRISE_SCHEMA, refName } from './schema.js';

/**
 * How a SCIM attribute maps onto a column. `key`: the column holds the value lower-cased in JS (so
 * comparisons are exact in both engines and `eq` uses the unique index); `text`: compared through SQL
 * lower(); `exact`: compared as is; `json`: the attribute sits inside a JSON text column, so SQL can
 * only narrow (a LIKE on the text) and the rows are checked in memory; `member`: an EXISTS on
 * group_members.
 */
type Column =
  | { kind: 'key' | 'text' | 'exact' | 'bool' | 'time'; col: string }
  | { kind: 'json'; col: string }
  | { kind: 'member'; self: string; other: string; table: string };

const USER_COLUMNS: Record<string, Column> = {
  id: { kind: 'exact', col: 'id' },
  externalId: { kind: 'exact', col: 'external_id' },
  userName: { kind: 'key', col: 'user_name_key' },
  displayName: { kind: 'text', col: 'display_name' },
  'name.givenName': { kind: 'text', col: 'given_name' },
  'name.familyName': { kind: 'text', col: 'family_name' },
  active: { kind: 'bool', col: 'active' },
  'meta.created': { kind: 'time', col: 'created_at' },
  'meta.lastModified': { kind: 'time', col: 'updated_at' },
  'groups.value': { kind: 'member', self: 'user_id', other: 'group_id', table: 'users' },
};
const USER_JSON: Record<string, string> = {
  emails: 'emails',
  phoneNumbers: 'phone_numbers',
  addresses: 'addresses',
};

const GROUP_COLUMNS: Record<string, Column> = {
  id: { kind: 'exact', col: 'id' },
  externalId: { kind: 'exact', col: 'external_id' },
  displayName: { kind: 'key', col: 'display_name_key' },
  'meta.created': { kind: 'time', col: 'created_at' },
  'meta.lastModified': { kind: 'time', col: 'updated_at' },
  'members.value': { kind: 'member', self: 'group_id', other: 'user_id', table: 'groups' },
};

function userColumn(ref: AttrRef): Column | undefined {
  const name = refName(ref);
  if (USER_COLUMNS[name]) return USER_COLUMNS[name];
  if (USER_JSON[ref.attr.name] && ref.schema !== ENTERPRISE_SCHEMA)
    return { kind: 'json', col: USER_JSON[ref.attr.name]! };
  if (ref.attr.name === 'groups' || ref.attr.name === 'meta') return undefined;
  return { kind: 'json', col: 'attributes' }; // title, name.formatted, enterprise attributes…
}

const groupColumn = (ref: AttrRef): Column | undefined => GROUP_COLUMNS[refName(ref)];

/**
 * A filter as SQL: `where` keeps every matching row (undefined: no narrowing), and `exact` says the
 * SQL alone decides, with no check in memory needed. Exact conditions never evaluate to NULL, so
 * `not` can negate them.
 */
export interface SqlFilter {
  where: Expression<SqlBool> | undefined;
  exact: boolean;
}

const isAscii = (s: string) => /^[\x20-\x7e]*$/.test(s);
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function filterToSql(kind: 'User' | 'Group', engine: Engine, f: Filter): SqlFilter {
  const column = kind === 'User' ? userColumn : groupColumn;
  const table = kind === 'User' ? 'users' : 'groups';
  const ref = (col: string) => sql.ref(`${table}.${col}`);
  // Text ordering by code point in both engines (PostgreSQL's default collation is the locale's).
  const ordered = (e: RawBuilder<unknown>) => (engine === 'postgres' ? sql`${e} collate "C"` : e);

  const compareText = (e: RawBuilder<unknown>, op: CompareOp, v: string): RawBuilder<SqlBool> => {
    switch (op) {
      case 'eq':
        return sql<SqlBool>`${e} = ${v}`;
      case 'co':
        return sql<SqlBool>`${e} like ${`%${likeEscape(v)}%`} escape '\\'`;
      case 'sw':
        return sql<SqlBool>`${e} like ${`${likeEscape(v)}%`} escape '\\'`;
      case 'ew':
        return sql<SqlBool>`${e} like ${`%${likeEscape(v)}`} escape '\\'`;
      case 'gt':
        return sql<SqlBool>`${ordered(e)} > ${v}`;
      case 'ge':
        return sql<SqlBool>`${ordered(e)} >= ${v}`;
      case 'lt':
        return sql<SqlBool>`${ordered(e)} < ${v}`;
      default:
        return sql<SqlBool>`${ordered(e)} <= ${v}`;
    }
  };
  const notNull = (col: string, cond: RawBuilder<SqlBool>) =>
    sql<SqlBool>`(${ref(col)} is not null and ${cond})`;
  const inexact = (where?: Expression<SqlBool>): SqlFilter => ({ where, exact: false });

  const leaf = (c: Column | undefined, op: CompareOp | 'pr', value: FilterValue): SqlFilter => {
    if (!c) return inexact();
    if (op === 'ne') {
      const eq = leaf(c, 'eq', value);
      return eq.exact && eq.where ? { where: sql<SqlBool>`not ${eq.where}`, exact: true } : inexact();
    }
    if (c.kind === 'member') {
      const sub = sql`select 1 from group_members m where m.${sql.ref(c.self)} = ${ref('id')}`;
      if (op === 'pr') return { where: sql<SqlBool>`exists (${sub})`, exact: true };
      if (op === 'eq' && typeof value === 'string') {
        return { where: sql<SqlBool>`exists (${sub} and m.${sql.ref(c.other)} = ${value})`, exact: true };
      }
      return inexact();
    }
    if (c.kind === 'json') {
      // Narrow by the JSON text; the in-memory check decides. Lower-casing is a superset for ASCII only.
      if (typeof value !== 'string' || !isAscii(value) || !['eq', 'co', 'sw', 'ew'].includes(op))
        return inexact();
      const needle = JSON.stringify(value.toLowerCase()).slice(1, -1);
      return inexact(sql<SqlBool>`lower(${ref(c.col)}) like ${`%${likeEscape(needle)}%`} escape '\\'`);
    }
    if (op === 'pr') {
      if (c.kind === 'bool' || c.kind === 'time') return { where: sql<SqlBool>`1 = 1`, exact: true };
      return { where: sql<SqlBool>`(${ref(c.col)} is not null and ${ref(c.col)} <> '')`, exact: true };
    }
    if (value === null) {
      return op === 'eq'
        ? { where: sql<SqlBool>`${ref(c.col)} is null`, exact: c.kind !== 'bool' && c.kind !== 'time' }
        : inexact();
    }
    switch (c.kind) {
      case 'bool':
        return { where: sql<SqlBool>`${ref(c.col)} = ${value === true ? 1 : 0}`, exact: op === 'eq' };
      case 'time':
        return { where: compareText(sql`${ref(c.col)}`, op, String(value)), exact: true };
      case 'key':
        return {
          where: notNull(c.col, compareText(sql`${ref(c.col)}`, op, String(value).toLowerCase())),
          exact: true,
        };
      case 'text': {
        const v = String(value);
        if (!isAscii(v)) return inexact();
        return {
          where: notNull(c.col, compareText(sql`lower(${ref(c.col)})`, op, v.toLowerCase())),
          exact: true,
        };
      }
      default: {
        const v = String(value);
        // SQLite's LIKE ignores ASCII case: exact for eq and ordering, a superset for co/sw/ew.
        const exact = engine === 'postgres' || !['co', 'sw', 'ew'].includes(op);
        return { where: notNull(c.col, compareText(sql`${ref(c.col)}`, op, v)), exact };
      }
    }
  };

  const walk = (node: Filter): SqlFilter => {
    switch (node.op) {
      case 'and': {
        const parts = node.filters.map(walk);
        const wheres = parts.flatMap((p) => (p.where ? [p.where] : []));
        return {
          where: wheres.length === 0 ? undefined : sql<SqlBool>`(${sql.join(wheres, sql` and `)})`,
          exact: parts.every((p) => p.exact),
        };
      }
      case 'or': {
        const parts = node.filters.map(walk);
        if (parts.some((p) => !p.where)) return inexact();
        return {
          where: sql<SqlBool>`(${sql.join(
            parts.map((p) => p.where!),
            sql` or `,
          )})`,
          exact: parts.every((p) => p.exact),
        };
      }
      case 'not': {
        const inner = walk(node.filter);
        return inner.exact && inner.where
          ? { where: sql<SqlBool>`(not ${inner.where})`, exact: true }
          : inexact();
      }
      case '[]': {
        // Only the narrowing survives: the element-wise match is checked in memory.
        // A single comparison inside the brackets means the same as without them; otherwise only
        // the narrowing survives (negations not even that) and elements are checked in memory.
        const inner = walk(node.filter);
        const op = node.filter.op;
        if (op !== 'and' && op !== 'or' && op !== 'not' && op !== '[]' && op !== 'ne') return inner;
        return hasNot(node.filter) ? inexact() : inexact(inner.where);
      }
      default:
        return leaf(column(node.ref), node.op, node.op === 'pr' ? null : node.value);
    }
  };
  return walk(f);
}

const hasNot = (f: Filter): boolean =>
  f.op === 'not' || f.op === 'ne' || ((f.op === 'and' || f.op === 'or') && f.filters.some(hasNot));
