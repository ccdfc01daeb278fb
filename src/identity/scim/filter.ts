import { type Filter as Parsed, parse } from 'scim2-parse-filter';
import { isObject } from './coerce.js';
import { invalidFilter } from './errors.js';
import {
  type AttrDef,
  type AttrRef,
  containerOf,
  findAttr,
  type ResourceSchema,
  resolveAttrPath,
} from './schema.js';

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type FilterValue = string | number | boolean | null;

/** A filter whose attribute names are resolved against the schema (canonical, typed). */
export type Filter =
  | { op: 'and' | 'or'; filters: Filter[] }
  | { op: 'not'; filter: Filter }
  | { op: CompareOp; ref: AttrRef; value: FilterValue }
  | { op: 'pr'; ref: AttrRef }
  /** `emails[type eq "work"]`: some element of a multi-valued attribute matches the inner filter */
  | { op: '[]'; ref: AttrRef; filter: Filter };

const MAX_FILTER_LENGTH = 4096;

/**
 * Parses a SCIM filter (RFC 7644 §3.4.2.2) with scim2-parse-filter, then resolves every attribute
 * case-insensitively and checks operators against attribute types: anything wrong is `invalidFilter`.
 */
export function parseFilter(rs: ResourceSchema, text: string): Filter {
  if (text.length > MAX_FILTER_LENGTH) throw invalidFilter('the filter is too long');
  let ast: Parsed;
  try {
    ast = parse(text);
  } catch (err) {
    throw invalidFilter(`the filter cannot be parsed: ${(err as Error).message}`.slice(0, 300));
  }
  return resolveFilter(rs, ast, undefined, 0);
}

/** Parses the filter inside a PATCH value path (`members[value eq "…"]`) against its attribute. */
export function parseValueFilter(
  rs: ResourceSchema,
  parent: AttrRef,
  text: string,
  make: (d: string) => Error,
): Filter {
  let ast: Parsed;
  try {
    ast = parse(text);
  } catch (err) {
    throw make(`the value filter cannot be parsed: ${(err as Error).message}`.slice(0, 300));
  }
  try {
    return resolveFilter(rs, ast, parent, 0);
  } catch (err) {
    throw make((err as Error).message);
  }
}

function resolveFilter(rs: ResourceSchema, f: Parsed, parent: AttrRef | undefined, depth: number): Filter {
  if (depth > 32) throw invalidFilter('the filter is nested too deeply');
  switch (f.op) {
    case 'and':
    case 'or':
      return {
        op: f.op,
        filters: (f as { filters: Parsed[] }).filters.map((c) => resolveFilter(rs, c, parent, depth + 1)),
      };
    case 'not':
      return { op: 'not', filter: resolveFilter(rs, (f as { filter: Parsed }).filter, parent, depth + 1) };
    case '[]': {
      if (parent) throw invalidFilter('value filters cannot be nested');
      const vp = f as { attrPath: string; valFilter: Parsed };
      const ref = resolveAttrPath(rs, vp.attrPath, invalidFilter);
      if (ref.sub || ref.attr.type !== 'complex') {
        throw invalidFilter(`"${vp.attrPath}" is not a complex attribute`);
      }
      return { op: '[]', ref, filter: resolveFilter(rs, vp.valFilter, ref, depth + 1) };
    }
    default: {
      const c = f as { op: CompareOp | 'pr'; attrPath: string; compValue?: FilterValue };
      const ref = resolveRef(rs, c.attrPath, parent);
      if (c.op === 'pr') return { op: 'pr', ref };
      return { op: c.op, ref, value: checkOperand(ref, c.op, c.compValue ?? null) };
    }
  }
}

function resolveRef(rs: ResourceSchema, path: string, parent: AttrRef | undefined): AttrRef {
  if (parent) {
    const sub = findAttr(parent.attr.subAttributes ?? [], path);
    if (!sub) throw invalidFilter(`unknown attribute "${path}" in ${parent.attr.name}[…]`);
    return { ...parent, sub };
  }
  const ref = resolveAttrPath(rs, path, invalidFilter);
  if (ref.attr.type === 'complex' && !ref.sub) {
    // `emails eq "x"` compares the primary value sub-attribute (RFC 7644 §3.4.2.2)
    const value = findAttr(ref.attr.subAttributes ?? [], 'value');
    if (!value) throw invalidFilter(`"${path}" is complex; name a sub-attribute`);
    return { ...ref, sub: value };
  }
  if (ref.attr.returned === 'never' || ref.sub?.returned === 'never') {
    throw invalidFilter(`"${path}" cannot be filtered on`);
  }
  return ref;
}

const defOf = (ref: AttrRef): AttrDef => ref.sub ?? ref.attr;

function checkOperand(ref: AttrRef, op: CompareOp, value: FilterValue): FilterValue {
  const def = defOf(ref);
  if (value === null) {
    if (op !== 'eq' && op !== 'ne') throw invalidFilter(`${op} needs a value`);
    return null;
  }
  switch (def.type) {
    case 'boolean': {
      const b =
        typeof value === 'string' && /^(true|false)$/i.test(value) ? value.toLowerCase() === 'true' : value;
      if (typeof b !== 'boolean') throw invalidFilter(`${def.name} is a boolean`);
      if (op !== 'eq' && op !== 'ne') throw invalidFilter(`${op} is not defined for booleans`);
      return b;
    }
    case 'dateTime':
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
        throw invalidFilter(`${def.name} is a dateTime: compare it with a quoted date`);
      }
      if (op === 'co' || op === 'sw' || op === 'ew') throw invalidFilter(`${op} is not defined for dateTime`);
      return new Date(value).toISOString();
    default:
      if (typeof value !== 'string') throw invalidFilter(`${def.name} is a string: quote the value`);
      return value;
  }
}

/** The values an attribute reference names in a resource (multi-valued attributes flattened). */
export function valuesAt(rs: ResourceSchema, doc: Record<string, unknown>, ref: AttrRef): unknown[] {
  const holder = containerOf(rs, doc, ref.schema, false);
  const v = holder?.[ref.attr.name];
  if (v === undefined || v === null) return [];
  const items = Array.isArray(v) ? v : [v];
  if (!ref.sub) return items;
  const name = ref.sub.name;
  return items.filter(isObject).flatMap((e) => (e[name] === undefined || e[name] === null ? [] : [e[name]]));
}

function compare(def: AttrDef, actual: unknown, op: CompareOp, expected: FilterValue): boolean {
  if (def.type === 'boolean') return actual === expected;
  if (def.type === 'dateTime') {
    const a = Date.parse(String(actual));
    const e = Date.parse(String(expected));
    if (Number.isNaN(a)) return false;
    return op === 'eq' ? a === e : op === 'gt' ? a > e : op === 'ge' ? a >= e : op === 'lt' ? a < e : a <= e;
  }
  let a = String(actual);
  let e = String(expected);
  if (!def.caseExact) {
    a = a.toLowerCase();
    e = e.toLowerCase();
  }
  switch (op) {
    case 'eq':
      return a === e;
    case 'co':
      return a.includes(e);
    case 'sw':
      return a.startsWith(e);
    case 'ew':
      return a.endsWith(e);
    case 'gt':
      return a > e;
    case 'ge':
      return a >= e;
    case 'lt':
      return a < e;
    case 'le':
      return a <= e;
    default:
      return false;
  }
}

/** Evaluates a resolved filter against a full SCIM resource, with SCIM's case rules. */
export function matches(rs: ResourceSchema, doc: Record<string, unknown>, f: Filter): boolean {
  switch (f.op) {
    case 'and':
      return f.filters.every((c) => matches(rs, doc, c));
    case 'or':
      return f.filters.some((c) => matches(rs, doc, c));
    case 'not':
      return !matches(rs, doc, f.filter);
    case '[]':
      return valuesAt(rs, doc, f.ref).some(
        (el) => isObject(el) && matches(rs, wrap(rs, f.ref, el), f.filter),
      );
    case 'pr':
      return valuesAt(rs, doc, f.ref).some((v) => v !== '' && !(Array.isArray(v) && v.length === 0));
    case 'ne':
      return !matches(rs, doc, { ...f, op: 'eq' });
    default: {
      const values = valuesAt(rs, doc, f.ref);
      if (f.value === null) return f.op === 'eq' && values.length === 0;
      return values.some((v) => compare(defOf(f.ref), v, f.op, f.value));
    }
  }
}

/** One element of a multi-valued attribute, placed where a resource would hold it (for inner filters). */
export function wrap(
  rs: ResourceSchema,
  ref: AttrRef,
  element: Record<string, unknown>,
): Record<string, unknown> {
  return ref.schema === rs.core
    ? { [ref.attr.name]: element }
    : { [ref.schema]: { [ref.attr.name]: element } };
}

/** Every attribute a filter reads, so callers load only what they must (e.g. a user's groups). */
export function attributesRead(f: Filter): AttrRef[] {
  switch (f.op) {
    case 'and':
    case 'or':
      return f.filters.flatMap(attributesRead);
    case 'not':
      return attributesRead(f.filter);
    case '[]':
      return [f.ref, ...attributesRead(f.filter)];
    default:
      return [f.ref];
  }
}
