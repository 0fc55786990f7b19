/**
 * Errors of long-lived connections (ioredis clients, the pg pool) go to the process log: a Redis
 * or PostgreSQL that keeps refusing is what an operator needs to see first. The clients retry by
 * themselves and emit an error per attempt, so each connection logs at most once per window
 * (10 s), counting what it left out. Messages are stripped of URL credentials.
 */
import type { Logger } from './logger.js';

/** What emits a connection's errors (an ioredis client, a pg.Pool, a pg.Client). */
export interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface ConnectionErrorOptions {
  /** Which connection this is, as the log shows it (`redis:api`, `postgres:norn`). */
  name: string;
  log: Logger;
  /** Milliseconds since the epoch; Date.now unless a test drives time. */
  clock?: () => number;
  /** At most one log line per this many ms (default 10 s). */
  everyMs?: number;
}

export const CONNECTION_ERROR_LOG_MS = 10_000;

/** `redis://user:secret@host` -> `redis://user:[redacted]@host`, wherever it appears in text. */
export function redactUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^@\s]*)@/gi, '$1$2:[redacted]@');
}

/** The cause as one line: the message (and code when the message lacks it), credentials removed. */
export function connectionCause(err: unknown): string {
  const e = (err ?? {}) as { message?: unknown; code?: unknown };
  const message = typeof e.message === 'string' && e.message ? e.message : String(err);
  const code = typeof e.code === 'string' && !message.includes(e.code) ? ` (${e.code})` : '';
  return redactUrlCredentials(message + code);
}

/**
 * A rate limiter of log lines: returns how many calls it dropped since the last one it let
 * through, or undefined while the window of the last one is still open.
 */
export function createLogWindow(everyMs: number, clock: () => number) {
  let last = -Infinity;
  let dropped = 0;
  return (): number | undefined => {
    const now = clock();
    if (now - last < everyMs) {
      dropped++;
      return undefined;
    }
    last = now;
    const n = dropped;
    dropped = 0;
    return n;
  };
}

/**
 * Logs `source`'s errors (a listener also keeps Node from treating them as unhandled and crashing
 * the process): a warning naming the connection and the cause, at most once per window.
 */
export function logConnectionErrors(source: ErrorEmitter, o: ConnectionErrorOptions): void {
  const allow = createLogWindow(o.everyMs ?? CONNECTION_ERROR_LOG_MS, o.clock ?? Date.now);
  source.on('error', (err: Error) => {
    const suppressed = allow();
    if (suppressed === undefined) return;
    const cause = connectionCause(err);
    o.log.warn(
      { connection: o.name, cause, ...(suppressed ? { suppressed } : {}) },
      `${o.name} connection error: ${cause}`,
    );
  });
}

/** Closing a connection that may already be gone: a failure is only worth a debug line. */
export function closeQuietly(
  close: () => Promise<unknown>,
  name: string,
  log: Logger,
): Promise<void> {
  return close().then(
    () => undefined,
    (err: unknown) =>
      log.debug({ connection: name, cause: connectionCause(err) }, `closing ${name} failed`),
  );
}
