/** The database cannot be reached right now; requests get 503 and /readyz fails until it recovers. */
export class DatabaseUnavailable extends Error {
  constructor(cause: unknown) {
    super('database unavailable', { cause });
    this.name = 'DatabaseUnavailable';
  }
}

const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08001',
  '08003',
  '08006',
  'SQLITE_BUSY',
  'SQLITE_CANTOPEN',
  'SQLITE_IOERR',
  // Out of space (issue 16 point 5): writes answer 503 and /readyz reports it until space returns.
  'SQLITE_FULL',
  '53100', // disk_full
  // The server is short of something for a while: a retry later may succeed, like an outage.
  '53000', // insufficient_resources
  '53200', // out_of_memory
  '53300', // too_many_connections (max_connections, a role's or database's CONNECTION LIMIT)
]);

const unavailableMessages = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error',
  'connect ECONNREFUSED',
];

export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseUnavailable) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && unavailableCodes.has(code)) return true;
  if (unavailableMessages.some((m) => err.message.includes(m))) return true;
  const inner = (err as { errors?: unknown[] }).errors; // AggregateError from dual-stack connects
  if (Array.isArray(inner) && inner.some(isDatabaseUnavailable)) return true;
  return err.cause !== undefined && err.cause !== err && isDatabaseUnavailable(err.cause);
}

const storageFullCodes = new Set(['SQLITE_FULL', 'ENOSPC', '53100']);

/**
 * The database has no room to write (SQLite's SQLITE_FULL, PostgreSQL's disk_full). The store reports
 * it once (and its recovery) and /readyz names it, so callers answer 503 without logging it again.
 */
export function isStorageFull(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && storageFullCodes.has(code)) return true;
  return err.cause !== undefined && err.cause !== err && isStorageFull(err.cause);
}

/** A unique constraint was violated: the caller maps it to 409. */
export function isUniqueViolation(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
