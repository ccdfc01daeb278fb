/** JSON with object keys sorted at every depth, so the same event always hashes the same. */
export function canonicalJson(value: unknown): string {
  // Plain data (what events carry) is written directly, without sorted copies of every object (an
  // audited write's largest allocation); anything else takes the general path, whose output is the
  // definition: JSON.stringify of the value with its keys sorted.
  return plain(value, 0) ? writePlain(value) : JSON.stringify(sortKeys(value));
}

/** Beyond this depth the general path decides (it also throws for cycles as JSON.stringify does). */
const MAX_PLAIN_DEPTH = 32;

/** Strings, finite numbers, booleans, null, and arrays and plain objects of them (undefined members too), no key a number. */
function plain(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= MAX_PLAIN_DEPTH) return false;
      const proto = Object.getPrototypeOf(value);
      if (proto === Array.prototype) {
        for (const v of value as unknown[]) if (v !== undefined && !plain(v, depth + 1)) return false;
        return true;
      }
      if (proto !== Object.prototype && proto !== null) return false;
      for (const k in value) {
        if (!Object.hasOwn(value, k)) return false;
        // JSON.stringify writes array-index keys first, in numeric order, whatever order they were set in;
        // an own "__proto__" key (JSON.parse makes them) is dropped by the general path: it decides
        if (k === 'toJSON' || k === '__proto__' || isArrayIndex(k)) return false;
        const v = (value as Record<string, unknown>)[k];
        if (v !== undefined && !plain(v, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

function isArrayIndex(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 48 && c <= 57 && /^(0|[1-9]\d*)$/.test(key) && Number(key) < 2 ** 32 - 1;
}

function writePlain(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v: unknown = value[i];
      out += v === undefined ? 'null' : writePlain(v);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const k of Object.keys(record).sort()) {
    const v = record[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${writePlain(v)}`;
    first = false;
  }
  return `${out}}`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}
