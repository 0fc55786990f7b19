/**
 * norn's one error type. A `code` says what happened (stable, machine-readable); `retryable` says
 * whether running the same step again could help; `details` is safe to show (never secrets).
 * Checks use `isNornError`, which also recognises errors that crossed a process boundary by name.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'SPEC_INVALID'
  | 'SECRETS_INVALID'
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'CANCELLED'
  | 'LEASE_LOST'
  | 'PIPELINE_UNKNOWN'
  | 'STEP_FAILED'
  | 'COMMAND_FAILED'
  | 'TIMEOUT'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface NornErrorOptions {
  retryable?: boolean;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class NornError extends Error {
  override readonly name = 'NornError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: NornErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

export function isNornError(err: unknown): err is NornError {
  return (
    err instanceof NornError || (err instanceof Error && err.name === 'NornError' && 'code' in err)
  );
}

/** Normalises whatever was thrown into an Error (GW's coerceError). */
export function toError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === 'string' ? err : JSON.stringify(err));
}

export const notFound = (what: string) => new NornError('NOT_FOUND', `${what} not found`);

/** A zod error's problems, one `path: message` each (the path left out at the root). */
export const zodProblems = (error: {
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>;
}) =>
  error.issues.map((i) =>
    i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message,
  );

/**
 * The end of an exhaustive `switch`: `value` is `never` when every case is handled, so adding a
 * member to the union breaks the build here. At run time (a value from outside the types) it throws.
 */
export function unreachable(value: never, what: string): never {
  throw new NornError('INTERNAL', `unexpected ${what}: ${JSON.stringify(value)}`);
}
