/** How the CLI fails: every failure carries the exit code the operator's scripts can rely on. */
import { NornError, type ErrorCode } from '../shared/errors.js';

/** 0 ok · 1 the run failed or was cancelled · 2 usage · 3 the api is unreachable or answered an error. */
export const EXIT = { ok: 0, runFailed: 1, usage: 2, api: 3, interrupted: 130 } as const;

export class CliError extends NornError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly exitCode: number,
    details?: Record<string, unknown>,
  ) {
    super(code, message, { details });
  }
}

export const usageError = (message: string) => new CliError('BAD_REQUEST', message, EXIT.usage);

const CODES = new Set<string>([
  'CONFIG_INVALID',
  'SPEC_INVALID',
  'SECRETS_INVALID',
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'CONFLICT',
  'CANCELLED',
  'LEASE_LOST',
  'PIPELINE_UNKNOWN',
  'STEP_FAILED',
  'COMMAND_FAILED',
  'TIMEOUT',
  'UNAVAILABLE',
  'INTERNAL',
]);

/** An error the api answered; `details` keeps the body's extra fields (e.g. runningDeploymentId). */
export function apiError(
  status: number,
  code: string | undefined,
  message: string,
  details: Record<string, unknown> = {},
) {
  const known = code && CODES.has(code) ? (code as ErrorCode) : 'INTERNAL';
  return new CliError(known, message, EXIT.api, { ...details, status, apiCode: code ?? null });
}
