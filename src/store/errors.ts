/** Recognising constraint violations from either driver. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

// Socket errors meaning "no connection" (Node's net, from pg and ioredis alike).
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// PostgreSQL SQLSTATEs (Appendix A): class 08 connection exception; 57P01 admin_shutdown, 57P02
// crash_shutdown, 57P03 cannot_connect_now (starting up); 53300 too_many_connections.
const POSTGRES_UNAVAILABLE = /^(08...|57P0[123]|53300)$/;
// What pg and ioredis say, without a code, when a connection died or cannot be had.
const UNAVAILABLE_MESSAGES =
  /^(Connection terminated|Connection is closed|Client has encountered a connection error|timeout exceeded when trying to connect|Stream isn't writeable|Reached the max retries per request limit)/;

/**
 * Whether an error means the database or Redis is not answering (down, restarting, unreachable), as
 * opposed to a bug or a refused statement. Such a request is answered 503 "not working at the moment".
 */
export function isDependencyUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, name, message, errors } = error as { code?: unknown; name?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || POSTGRES_UNAVAILABLE.test(code) || code === 'SQLITE_BUSY')) return true;
  if (name === 'MaxRetriesPerRequestError') return true;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
  // Node's happy-eyeballs connect fails with an AggregateError of one error per address.
  return Array.isArray(errors) && errors.length > 0 && errors.every((inner) => isDependencyUnavailable(inner));
}
