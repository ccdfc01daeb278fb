/** A directory reference is an id (a UUID) or a name; this tells which. */
export const looksLikeId = (ref: string): boolean =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
