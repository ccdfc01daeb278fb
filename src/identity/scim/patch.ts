import { coerceSingle, coerceValue, isObject } from './coerce.js';
import { invalidPath, invalidSyntax, invalidValue, mutability, noTarget, ScimError } from './errors.js';
import { type Filter, matches, parseValueFilter, wrap } from './filter.js';
import {
  type AttrDef,
  type AttrRef,
  containerOf,
  findAttr,
  PATCH_SCHEMA,
  type ResourceSchema,
  resolveAttrPath,
  splitUrn,
} from './schema.js';

export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}

const MAX_OPERATIONS = 1000;

/**
 * Reads a PatchOp body (RFC 7644 §3.5.2) the way Entra ID sends it, today and before its 2020 fix:
 * `op` in any case (`Replace`, `Add`, `Remove`), member names in any case.
 */
export function parsePatchBody(body: unknown): PatchOperation[] {
  if (!isObject(body)) throw invalidSyntax('the request body must be a PatchOp JSON object');
  const get = (name: string) => Object.entries(body).find(([k]) => k.toLowerCase() === name)?.[1];
  const schemas = get('schemas');
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === PATCH_SCHEMA.toLowerCase())
  ) {
    throw invalidSyntax(`schemas must contain ${PATCH_SCHEMA}`);
  }
  const ops = get('operations');
  if (!Array.isArray(ops) || ops.length === 0) throw invalidSyntax('Operations must be a non-empty array');
  if (ops.length > MAX_OPERATIONS)
    throw new ScimError(400, `at most ${MAX_OPERATIONS} operations`, 'tooMany');
  return ops.map((raw, i) => {
    if (!isObject(raw)) throw invalidSyntax(`Operations[${i}] must be an object`);
    const field = (name: string) => Object.entries(raw).find(([k]) => k.toLowerCase() === name);
    const op = field('op')?.[1];
    const kind = typeof op === 'string' ? op.toLowerCase() : '';
    if (kind !== 'add' && kind !== 'replace' && kind !== 'remove') {
      throw invalidSyntax(`Operations[${i}].op must be add, replace or remove`);
    }
    const path = field('path')?.[1];
    if (path !== undefined && path !== null && (typeof path !== 'string' || path.trim() === '')) {
      throw invalidPath(`Operations[${i}].path must be a non-empty string`);
    }
    const value = field('value');
    if (kind !== 'remove' && value === undefined)
      throw invalidValue(`Operations[${i}] (${kind}) needs a value`);
    if (kind === 'remove' && (path === undefined || path === null)) {
      throw noTarget(`Operations[${i}] (remove) needs a path`);
    }
    return {
      op: kind,
      ...(typeof path === 'string' ? { path: path.trim() } : {}),
      ...(value ? { value: value[1] } : {}),
    };
  });
}

/** A PATCH path: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, optionally behind a schema URN. */
interface PatchPath {
  ref: AttrRef;
  filter?: Filter;
  /** the sub-attribute after a value filter */
  sub?: AttrDef;
}

export function parsePatchPath(rs: ResourceSchema, path: string): PatchPath {
  const open = path.indexOf('[');
  if (open < 0) return { ref: resolveAttrPath(rs, path) };
  const close = path.lastIndexOf(']');
  if (close < open) throw invalidPath(`unbalanced brackets in "${path}"`);
  const ref = resolveAttrPath(rs, path.slice(0, open));
  if (ref.sub || ref.attr.type !== 'complex' || !ref.attr.multiValued) {
    throw invalidPath(`"${path.slice(0, open)}" is not a multi-valued complex attribute`);
  }
  const filter = parseValueFilter(rs, ref, path.slice(open + 1, close), invalidPath);
  const rest = path.slice(close + 1);
  if (rest === '') return { ref, filter };
  if (!rest.startsWith('.')) throw invalidPath(`unexpected "${rest}" in "${path}"`);
  const sub = findAttr(ref.attr.subAttributes ?? [], rest.slice(1));
  if (!sub) throw invalidPath(`unknown sub-attribute "${rest.slice(1)}" of ${ref.attr.name}`);
  return { ref, filter, sub };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Two elements of a multi-valued attribute are the same value when their `value`s are (or whole, without one). */
function sameElement(def: AttrDef, a: unknown, b: unknown): boolean {
  if (isObject(a) && isObject(b) && a.value !== undefined && b.value !== undefined) {
    const caseExact = findAttr(def.subAttributes ?? [], 'value')?.caseExact ?? true;
    const x = String(a.value);
    const y = String(b.value);
    if (!(caseExact ? x === y : x.toLowerCase() === y.toLowerCase())) return false;
    return a.type === undefined || b.type === undefined || a.type === b.type || def.name === 'members';
  }
  return same(a, b);
}

/** The equalities of a value filter (`type eq "work" and …`), to create the element it names. */
function equalities(f: Filter): Record<string, unknown> | null {
  if (f.op === 'eq' && f.ref.sub && f.value !== null) return { [f.ref.sub.name]: f.value };
  if (f.op === 'and') {
    const parts = f.filters.map(equalities);
    return parts.every((p) => p !== null) ? Object.assign({}, ...parts) : null;
  }
  return null;
}

function checkWritable(ref: AttrRef, sub: AttrDef | undefined, current: unknown, value: unknown): boolean {
  const target = sub ?? ref.sub;
  const readOnly = ref.attr.mutability === 'readOnly' || target?.mutability === 'readOnly';
  if (!readOnly) return true;
  // Entra sends the id back in a no-path replace: an unchanged read-only value is no change.
  if (value !== undefined && same(current, value)) return false;
  throw mutability(`${ref.attr.name}${target ? `.${target.name}` : ''} is read-only`);
}

/** Keeps one primary per multi-valued attribute: the last one set wins, as RFC 7643 §2.4 implies. */
function onePrimary(list: unknown[]): void {
  let seen = false;
  for (let i = list.length - 1; i >= 0; i--) {
    const e = list[i];
    if (isObject(e) && e.primary === true) {
      if (seen) delete e.primary;
      seen = true;
    }
  }
}

/**
 * Applies PATCH operations to a normalized resource (changing it in place), with Entra ID's dialect:
 * string booleans, a no-path replace whose value names attributes (`{"active": false}`, extension
 * attributes by URN), removal of members by a value array or a `members[value eq "…"]` path, and an
 * add or replace through a value filter that matches nothing creating the element it describes.
 */
export function applyPatch(rs: ResourceSchema, doc: Record<string, unknown>, ops: PatchOperation[]): void {
  for (const op of ops) {
    if (op.path !== undefined) {
      applyAt(rs, doc, op.op, op.path, op.value);
      continue;
    }
    if (!isObject(op.value)) throw invalidValue(`${op.op} without a path needs an object value`);
    for (const [key, value] of Object.entries(op.value)) {
      if (key.toLowerCase() === 'schemas') continue;
      const urn = splitUrn(rs, key);
      if (urn && urn.rest === '' && urn.schema !== rs.core) {
        if (!isObject(value)) throw invalidValue(`${urn.schema} must be an object`);
        for (const [k, v] of Object.entries(value)) applyAt(rs, doc, op.op, `${urn.schema}:${k}`, v);
      } else {
        applyAt(rs, doc, op.op, key, value);
      }
    }
  }
}

function applyAt(
  rs: ResourceSchema,
  doc: Record<string, unknown>,
  op: PatchOperation['op'],
  path: string,
  rawValue: unknown,
): void {
  const p = parsePatchPath(rs, path);
  const { ref } = p;
  const holder = containerOf(rs, doc, ref.schema, true)!;
  const name = ref.attr.name;
  const current = holder[name];

  if (!p.filter && !ref.sub) {
    // the whole attribute
    const value =
      op === 'remove' || rawValue === undefined ? undefined : coerceValue(ref.attr, rawValue, name);
    if (!checkWritable(ref, undefined, current, value)) return;
    if (op === 'remove') {
      if (ref.attr.multiValued && rawValue !== undefined && rawValue !== null) {
        // Entra: {"op":"Remove","path":"members","value":[{"value":"<id>"}]} removes just those
        const gone = coerceValue(ref.attr, rawValue, name) as unknown[];
        const left = (Array.isArray(current) ? current : []).filter(
          (e) => !gone.some((g) => sameElement(ref.attr, e, g)),
        );
        setOrDelete(holder, name, left);
      } else {
        delete holder[name];
      }
      return;
    }
    if (value === null) {
      delete holder[name];
      return;
    }
    if (ref.attr.multiValued) {
      const incoming = value as unknown[];
      const base = op === 'add' && Array.isArray(current) ? [...current] : [];
      for (const e of incoming) {
        const at = base.findIndex((x) => sameElement(ref.attr, x, e));
        if (at >= 0) base[at] = isObject(base[at]) && isObject(e) ? { ...base[at], ...e } : e;
        else base.push(e);
      }
      onePrimary(base);
      setOrDelete(holder, name, base);
    } else if (ref.attr.type === 'complex') {
      // RFC 7644 §3.5.2.1/3: sub-attributes given replace theirs, the others stay
      holder[name] = { ...(isObject(current) ? current : {}), ...(value as Record<string, unknown>) };
    } else {
      holder[name] = value;
    }
    return;
  }

  if (!p.filter && ref.sub) {
    const sub = ref.sub;
    const value = op === 'remove' ? undefined : coerceSingle(sub, rawValue, `${name}.${sub.name}`);
    if (!checkWritable(ref, undefined, isObject(current) ? current[sub.name] : undefined, value)) return;
    if (ref.attr.multiValued) {
      if (op === 'add')
        throw invalidPath(`add to ${name}.${sub.name} needs a value filter: ${name}[…].${sub.name}`);
      for (const e of Array.isArray(current) ? current : []) {
        if (!isObject(e)) continue;
        if (op === 'remove' || value === null) delete e[sub.name];
        else e[sub.name] = value;
      }
      return;
    }
    const obj = isObject(current) ? current : {};
    if (op === 'remove' || value === null) delete obj[sub.name];
    else obj[sub.name] = value;
    setOrDelete(holder, name, obj);
    return;
  }

  // a value filter: attr[filter] or attr[filter].sub
  const list = Array.isArray(current) ? [...current] : [];
  const hit = (e: unknown) => isObject(e) && matches(rs, wrap(rs, ref, e), p.filter!);
  const target = p.sub;
  if (op === 'remove') {
    checkWritable(ref, target, undefined, undefined);
    if (target) {
      for (const e of list) if (hit(e)) delete (e as Record<string, unknown>)[target.name];
      setOrDelete(
        holder,
        name,
        list.filter((e) => !isObject(e) || Object.keys(e).length > 0),
      );
    } else {
      setOrDelete(
        holder,
        name,
        list.filter((e) => !hit(e)),
      );
    }
    return;
  }
  const value = target
    ? coerceSingle(target, rawValue, `${name}.${target.name}`)
    : coerceSingle(ref.attr, rawValue, name);
  checkWritable(ref, target, undefined, value);
  let matched = list.filter(hit);
  if (matched.length === 0) {
    // Entra ID adds and replaces `emails[type eq "work"].value` on users that have no work email yet.
    const seed = equalities(p.filter!);
    if (!seed) throw noTarget(`no value of ${name} matches the filter in "${path}"`);
    const made: Record<string, unknown> = { ...seed };
    list.push(made);
    matched = [made];
  }
  for (const e of matched as Array<Record<string, unknown>>) {
    if (target) {
      if (value === null) delete e[target.name];
      else e[target.name] = value;
    } else if (isObject(value)) {
      if (op === 'replace') for (const k of Object.keys(e)) delete e[k];
      Object.assign(e, value);
    }
  }
  onePrimary(list);
  setOrDelete(
    holder,
    name,
    list.filter((e) => !isObject(e) || Object.keys(e).length > 0),
  );
}

function setOrDelete(holder: Record<string, unknown>, name: string, value: unknown): void {
  const empty =
    value === undefined ||
    value === null ||
    (Array.isArray(value) && value.length === 0) ||
    (isObject(value) && Object.keys(value).length === 0);
  if (empty) delete holder[name];
  else holder[name] = value;
}
