import { invalidValue } from './errors.js';
import {
  type AttrDef,
  containerOf,
  findAttr,
  type ResourceSchema,
  resolveAttrPath,
  splitUrn,
} from './schema.js';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Brings a value to the shape its definition says, the way Entra ID and other clients send it:
 * names matched case-insensitively, `"True"`/`"False"` as booleans (Entra before 2020), a single
 * value where a list is due, a bare string for a complex attribute with a `value` (Entra's manager).
 * Unknown sub-attributes are dropped; a value of the wrong type is `invalidValue`. null means absent.
 */
export function coerceValue(def: AttrDef, value: unknown, where: string): unknown {
  if (value === null || value === undefined) return null;
  if (def.multiValued) {
    const list = Array.isArray(value) ? value : [value];
    return list.map((v) => coerceSingle(def, v, where)).filter((v) => v !== null);
  }
  return coerceSingle(def, value, where);
}

export function coerceSingle(def: AttrDef, value: unknown, where: string): unknown {
  if (value === null || value === undefined) return null;
  switch (def.type) {
    case 'complex': {
      const subs = def.subAttributes ?? [];
      if (!isObject(value)) {
        if ((typeof value === 'string' || typeof value === 'number') && findAttr(subs, 'value')) {
          return { value: String(value) };
        }
        throw invalidValue(`${where} must be an object`);
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const sub = findAttr(subs, k);
        if (!sub) continue;
        const c = coerceSingle(sub, v, `${where}.${sub.name}`);
        if (c !== null && c !== '') out[sub.name] = c;
      }
      return Object.keys(out).length === 0 ? null : out;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value.trim())) {
        return value.trim().toLowerCase() === 'true';
      }
      throw invalidValue(`${where} must be a boolean`);
    case 'dateTime':
      if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return value;
      throw invalidValue(`${where} must be a dateTime`);
    default:
      if (typeof value === 'string') return value;
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      throw invalidValue(`${where} must be a string`);
  }
}

/** Sets one attribute (and only writable ones) of a normalized resource from a client's value. */
function put(rs: ResourceSchema, doc: Record<string, unknown>, key: string, value: unknown): void {
  let ref: ReturnType<typeof resolveAttrPath>;
  try {
    ref = resolveAttrPath(rs, key);
  } catch {
    return; // RFC 7644 §3.3: attributes the service provider does not know are ignored on create/replace
  }
  if (ref.attr.mutability === 'readOnly' || ref.sub?.mutability === 'readOnly') return;
  const holder = containerOf(rs, doc, ref.schema, true)!;
  if (!ref.sub) {
    const v = coerceValue(ref.attr, value, ref.attr.name);
    if (v === null || (Array.isArray(v) && v.length === 0)) delete holder[ref.attr.name];
    else holder[ref.attr.name] = v;
    return;
  }
  if (ref.attr.multiValued) return; // `emails.value` as a key names no single element
  const v = coerceSingle(ref.sub, value, `${ref.attr.name}.${ref.sub.name}`);
  const parent = isObject(holder[ref.attr.name]) ? (holder[ref.attr.name] as Record<string, unknown>) : {};
  if (v === null) delete parent[ref.sub.name];
  else parent[ref.sub.name] = v;
  if (Object.keys(parent).length > 0) holder[ref.attr.name] = parent;
  else delete holder[ref.attr.name];
}

/** A whole resource from a POST or PUT body, normalized; read-only and unknown attributes are left out. */
export function coerceResource(rs: ResourceSchema, body: unknown): Record<string, unknown> {
  if (!isObject(body)) throw invalidValue('the request body must be a JSON object');
  const doc: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key.toLowerCase() === 'schemas') continue;
    const urn = splitUrn(rs, key);
    if (urn && urn.rest === '' && urn.schema !== rs.core) {
      if (value === null) continue;
      if (!isObject(value)) throw invalidValue(`${urn.schema} must be an object`);
      for (const [k, v] of Object.entries(value)) put(rs, doc, `${urn.schema}:${k}`, v);
      continue;
    }
    put(rs, doc, key, value);
  }
  for (const [schema] of Object.entries(rs.schemas)) {
    const ext = doc[schema];
    if (isObject(ext) && Object.keys(ext).length === 0) delete doc[schema];
  }
  return doc;
}

export { isObject };
