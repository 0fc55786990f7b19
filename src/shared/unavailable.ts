/**
 * Tells an outage of PostgreSQL or Redis apart from a bug. The api answers the first with 503 and
 * Retry-After (the client may try again), the second with 500. The errors come from pg, from
 * Node's sockets under pg, and from ioredis (which never surfaces socket errors to a command: it
 * reconnects, and a command sent while it cannot reach Redis fails with one of its own messages).
 */

export type Service = 'PostgreSQL' | 'Redis';

/** Socket errors while pg connects or talks to the server. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that is going away or not there yet: class 08 (connection exception),
 * admin/crash shutdown, cannot connect now (starting up), too many connections.
 */
const PG_UNAVAILABLE = /^(08...|57P01|57P02|57P03|53300)$/;

const PG_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
];

const REDIS_MESSAGES = [
  'Connection is closed',
  "Stream isn't writeable",
  'Command timed out',
  'Reached the max retries per request limit',
];

/** Which service an error says is unreachable, if it says so; follows `cause` and AggregateError. */
export function unavailableService(err: unknown, depth = 0): Service | undefined {
  if (!(err instanceof Error) || depth > 4) return undefined;
  const e = err as Error & { code?: unknown; errors?: unknown[] };
  const message = e.message ?? '';
  if (e.name === 'MaxRetriesPerRequestError' || REDIS_MESSAGES.some((m) => message.includes(m)))
    return 'Redis';
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || PG_UNAVAILABLE.test(e.code)))
    return 'PostgreSQL';
  if (PG_MESSAGES.some((m) => message.includes(m))) return 'PostgreSQL';
  for (const inner of [...(Array.isArray(e.errors) ? e.errors : []), e.cause]) {
    const found = unavailableService(inner, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** The short reason to show (a code like ECONNREFUSED, or the library's message); never a secret. */
export function unavailableReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; errors?: Array<{ code?: unknown }> };
  const code = typeof e.code === 'string' ? e.code : e.errors?.find((x) => x?.code)?.code;
  return typeof code === 'string' ? code : String(e.message ?? err).slice(0, 200);
}
