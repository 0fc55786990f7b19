/**
 * Riding out a PostgreSQL outage. A call that failed for a reason that goes away by itself (the
 * server restarting, a connection dropped, a serialization conflict) is tried again with backoff
 * for NORN_DB_RETRY_MS; anything else (a syntax error, a constraint) fails at once. What is given
 * up on names its real cause: "PostgreSQL unreachable: connect ECONNREFUSED 127.0.0.1:5432".
 *
 * Every retry is written to the log of the step it happens in (an AsyncLocalStorage sink the
 * processor sets around a step), so a step's log says what happened whichever code made the call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pRetry from 'p-retry';
import type { Db } from './db.js';
import { NornError } from './errors.js';
import type { Logger } from './logger.js';

export interface DbRetryPolicy {
  /** How long to keep trying (0: once). */
  budgetMs: number;
  log?: Logger;
}

/** Node socket errors of a server that is down, restarting, or not reachable for now. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND', // a database host whose container is restarting has no DNS name for a moment
]);

/**
 * SQLSTATEs after which the same statement may succeed: connection exceptions (class 08), the
 * server shutting down or starting up (57P01-57P03), too many connections (53300), and the
 * conflicts PostgreSQL resolves by rolling one transaction back (40001, 40P01).
 */
const TRANSIENT_SQLSTATE = /^(08...|57P0[123]|53300|40001|40P01)$/;

/** pg's own words for a connection that died under it (it sets no code on these). */
const DROPPED =
  /^(Connection terminated( unexpectedly| due to connection timeout)?|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable)$/;

interface ErrLike {
  code?: unknown;
  message?: unknown;
  errors?: unknown;
}

export function isTransientDbError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as ErrLike;
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || TRANSIENT_SQLSTATE.test(e.code)))
    return true;
  if (typeof e.message === 'string' && DROPPED.test(e.message)) return true;
  // Node's happy-eyeballs connect (localhost: ::1 and 127.0.0.1) fails with an AggregateError.
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isTransientDbError);
}

/** What went wrong, in words an operator can act on; for transient errors, prefixed by what kind. */
export function describeDbError(err: unknown): string {
  const e = (err ?? {}) as ErrLike;
  const parts = Array.isArray(e.errors) ? e.errors.map(messageOf) : [];
  const said = [...new Set(parts.length ? parts : [messageOf(err)])].join(', ');
  const code = typeof e.code === 'string' ? e.code : '';
  if (/^(40001|40P01)$/.test(code)) return `PostgreSQL transaction conflict: ${said} (${code})`;
  if (!isTransientDbError(err)) return said;
  return `PostgreSQL unreachable: ${said}${TRANSIENT_SQLSTATE.test(code) ? ` (${code})` : ''}`;
}

function messageOf(err: unknown): string {
  const e = (err ?? {}) as ErrLike;
  if (typeof e.message === 'string' && e.message) return e.message;
  return typeof e.code === 'string' ? e.code : String(err);
}

/** Where retries of the current step are written (set by the processor around each step). */
const stepLog = new AsyncLocalStorage<(line: string) => void>();

/** Runs `fn` with database retries inside it written to `log` (a step's job log). */
export function withStepLog<T>(log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  return stepLog.run(log, fn);
}

/** The line a step's log gets (and the process log) when a call fails and will be tried again. */
function noteRetry(policy: DbRetryPolicy, err: unknown, attempt: number, startedAt: number) {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const line = `${describeDbError(err)}; trying again (attempt ${attempt + 1}, ${s(performance.now() - startedAt)} of ${s(policy.budgetMs)})`;
  stepLog.getStore()?.(line);
  policy.log?.warn({ err }, line);
}

/**
 * Runs `fn`, and again with backoff (0.2 s doubling to 5 s) while it fails with a transient
 * database error, for `policy.budgetMs`. Gives up with UNAVAILABLE naming the cause (retryable:
 * a later attempt of the step may meet a server that is back); other errors pass through as thrown.
 */
export async function retryDb<T>(fn: () => Promise<T>, policy: DbRetryPolicy): Promise<T> {
  const startedAt = performance.now();
  let failures = 0;
  try {
    const result = await pRetry(() => fn(), {
      retries: Infinity,
      minTimeout: 200,
      maxTimeout: 5_000,
      maxRetryTime: policy.budgetMs,
      unref: true,
      shouldRetry: ({ error }) => isTransientDbError(error),
      onFailedAttempt: ({ error, attemptNumber }) => {
        failures = attemptNumber;
        if (isTransientDbError(error) && performance.now() - startedAt < policy.budgetMs)
          noteRetry(policy, error, attemptNumber, startedAt);
      },
    });
    if (failures) stepLog.getStore()?.(`PostgreSQL answered again after ${failures} failed tries`);
    return result;
  } catch (err) {
    if (!isTransientDbError(err)) throw err;
    const tried = Math.round((performance.now() - startedAt) / 1000);
    throw new NornError('UNAVAILABLE', `${describeDbError(err)} (tried for ${tried} s)`, {
      retryable: true,
      cause: err,
    });
  }
}

/**
 * The pool step services get: every `query` (one statement, so safe to send again once the server
 * rolled it back or never saw it) and every `connect` is retried as retryDb does. A transaction on
 * a client from `connect` is not: a step that must survive an outage mid-transaction wraps the
 * whole transaction in retryDb.
 */
export function retryingDb(db: Db, policy: DbRetryPolicy): Db {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'query')
        return (...args: Parameters<Db['query']>) =>
          retryDb(() => (target.query as (...a: unknown[]) => Promise<unknown>)(...args), policy);
      if (prop === 'connect') return () => retryDb(() => target.connect(), policy);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
