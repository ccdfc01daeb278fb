import { type Static, type TSchema, Type } from '@sinclair/typebox';

/**
 * A value or null, for route schemas. Written as a JSON Schema type list (`type: ['integer', 'null']`),
 * not `anyOf: [T, null]`: the server coerces types (query strings need it), and ajv tries `T` first, so
 * a JSON null became 0, "" or false before `null` was ever tried. With a type list ajv coerces only a
 * value that matches none of the listed types.
 */
export function Nullable<T extends TSchema>(t: T) {
  if (typeof t.type !== 'string') return Type.Unsafe<Static<T> | null>(Type.Union([t, Type.Null()]));
  return Type.Unsafe<Static<T> | null>({ ...t, type: [t.type, 'null'] });
}
