/**
 * Turns what dockerode throws (HTTP status errors from the engine, socket errors) into NornErrors
 * with operator-readable messages. Every message passes through `redactText`, so a registry
 * password can never leak through an engine message.
 */
import { NornError, isNornError } from '../../errors.js';
import { redactText } from '../../exec.js';

interface EngineFailure {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string } | null;
}

const SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
]);

/** The HTTP status the engine answered with, when the error came from the engine. */
export function engineStatus(err: unknown): number | undefined {
  const status = (err as EngineFailure | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

export function isAbortError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; type?: string } | null;
  return e?.name === 'AbortError' || e?.code === 'ABORT_ERR' || e?.type === 'aborted';
}

export function cancelled(what: string, signal?: AbortSignal): NornError {
  const reason = typeof signal?.reason === 'string' ? signal.reason : 'aborted';
  return new NornError('CANCELLED', `${what} stopped: ${reason}`, { details: { reason } });
}

/** Throws CANCELLED when the signal has fired; call between engine requests. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw cancelled(what, signal);
}

/** The engine's own words for a failure (dockerode prefixes them with "(HTTP code N) ..."). */
export function engineMessage(err: unknown): string {
  const e = err as EngineFailure | null;
  const text = e?.json?.message ?? e?.message ?? String(err);
  return text.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** Maps an engine failure while doing `what` to a NornError; `secrets` are scrubbed from the text. */
export function engineError(
  err: unknown,
  what: string,
  secrets: readonly string[],
  signal?: AbortSignal,
): NornError {
  if (isNornError(err)) return err;
  if (signal?.aborted || isAbortError(err)) return cancelled(what, signal);
  const e = (err ?? {}) as EngineFailure;
  const message = redactText(engineMessage(err), secrets);
  if (e.code && SOCKET_ERRORS.has(e.code)) {
    return new NornError(
      'UNAVAILABLE',
      `${what}: the Docker engine does not answer (${e.code}); is dockerd running? (script/docker-up starts one)`,
      {
        retryable: true,
        cause: err,
      },
    );
  }
  switch (e.statusCode) {
    case 404:
      return new NornError('NOT_FOUND', `${what}: ${message}`, { cause: err });
    case 409:
      return new NornError('CONFLICT', `${what}: ${message}`, { retryable: true, cause: err });
    case 502:
    case 503:
    case 504:
      return new NornError('UNAVAILABLE', `${what}: ${message}`, { retryable: true, cause: err });
    default:
      return new NornError('COMMAND_FAILED', `${what}: ${message}`, {
        details: { status: e.statusCode },
        cause: err,
      });
  }
}

/** Runs an engine call where "no such object" (404) and the listed statuses mean there is nothing to do. */
export async function ignoreStatus<T>(
  call: Promise<T>,
  statuses: readonly number[] = [404],
): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    const status = engineStatus(err);
    if (status !== undefined && statuses.includes(status)) return undefined;
    throw err;
  }
}
