import { isObject } from './coerce.js';
import { invalidPath } from './errors.js';
import { type AttrRef, containerOf, type ResourceSchema, resolveAttrPath } from './schema.js';

/** The `attributes` / `excludedAttributes` query parameters (RFC 7644 §3.9), resolved. */
export interface Projection {
  attributes?: AttrRef[];
  excluded?: AttrRef[];
}

const parseList = (rs: ResourceSchema, text: string | undefined): AttrRef[] | undefined => {
  if (text === undefined || text.trim() === '') return undefined;
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((name) => resolveAttrPath(rs, name, invalidPath));
};

export function parseProjection(rs: ResourceSchema, attributes?: string, excluded?: string): Projection {
  return { attributes: parseList(rs, attributes), excluded: parseList(rs, excluded) };
}

/** Reads whether a projection asks for an attribute at all (e.g. to skip loading members). */
export function wants(p: Projection, attrName: string): boolean {
  if (p.attributes) return p.attributes.some((r) => r.attr.name === attrName);
  return !(p.excluded ?? []).some((r) => r.attr.name === attrName && !r.sub);
}

function copy(
  rs: ResourceSchema,
  from: Record<string, unknown>,
  to: Record<string, unknown>,
  ref: AttrRef,
): void {
  const src = containerOf(rs, from, ref.schema, false);
  const v = src?.[ref.attr.name];
  if (v === undefined) return;
  const dst = containerOf(rs, to, ref.schema, true)!;
  if (!ref.sub) {
    dst[ref.attr.name] = v;
    return;
  }
  const sub = ref.sub.name;
  if (Array.isArray(v)) {
    const prev = Array.isArray(dst[ref.attr.name])
      ? (dst[ref.attr.name] as Array<Record<string, unknown>>)
      : [];
    dst[ref.attr.name] = v.map((e, i) => ({
      ...(prev[i] ?? {}),
      ...(isObject(e) && e[sub] !== undefined ? { [sub]: e[sub] } : {}),
    }));
  } else if (isObject(v) && v[sub] !== undefined) {
    dst[ref.attr.name] = {
      ...(isObject(dst[ref.attr.name]) ? (dst[ref.attr.name] as object) : {}),
      [sub]: v[sub],
    };
  }
}

function drop(rs: ResourceSchema, doc: Record<string, unknown>, ref: AttrRef): void {
  if (ref.attr.returned === 'always') return;
  const holder = containerOf(rs, doc, ref.schema, false);
  if (!holder) return;
  const v = holder[ref.attr.name];
  if (!ref.sub) {
    delete holder[ref.attr.name];
  } else if (Array.isArray(v)) {
    for (const e of v) if (isObject(e)) delete e[ref.sub.name];
  } else if (isObject(v)) {
    delete v[ref.sub.name];
  }
  if (ref.schema !== rs.core && Object.keys(holder).length === 0) delete doc[ref.schema];
}

/** The resource as the client asked to see it; `id` and `schemas` always stay. */
export function project(
  rs: ResourceSchema,
  doc: Record<string, unknown>,
  p: Projection,
): Record<string, unknown> {
  if (p.attributes) {
    const out: Record<string, unknown> = { schemas: doc.schemas, id: doc.id };
    for (const ref of p.attributes) copy(rs, doc, out, ref);
    return out;
  }
  if (!p.excluded) return doc;
  const out = structuredClone(doc);
  for (const ref of p.excluded) drop(rs, out, ref);
  return out;
}
