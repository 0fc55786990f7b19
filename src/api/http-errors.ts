/** The single place where error codes become HTTP statuses. Unknown errors never leak details. */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isNornError, NornError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { unavailableReason, unavailableService } from '../shared/unavailable.js';

const STATUS: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  SPEC_INVALID: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  PIPELINE_UNKNOWN: 422,
  UNAVAILABLE: 503,
};

/** Seconds a client should wait before retrying while PostgreSQL or Redis is unreachable. */
export const RETRY_AFTER_S = 5;

export function toErrorResponse(err: Error, c: Context, log: Logger) {
  if (err instanceof HTTPException) return err.getResponse();
  const known = isNornError(err) ? err : asUnavailable(err);
  const status = known ? (STATUS[known.code] ?? 500) : 500;
  if (status === 503) {
    log.warn({ path: c.req.path, reason: known!.message }, 'request refused: a service is down');
    c.header('Retry-After', String(RETRY_AFTER_S));
  } else if (status >= 500) log.error({ err, path: c.req.path }, 'request failed');
  const body =
    known && status < 500
      ? { code: known.code, message: known.message, ...(known.details ?? {}) }
      : known && status === 503
        ? { code: known.code, message: known.message, retryAfterSeconds: RETRY_AFTER_S }
        : { code: 'INTERNAL', message: 'internal error' };
  return c.json({ error: body }, status);
}

/** PostgreSQL or Redis being unreachable is not a bug: say which, so the client can wait for it. */
function asUnavailable(err: Error): NornError | undefined {
  const service = unavailableService(err);
  if (!service) return undefined;
  return new NornError(
    'UNAVAILABLE',
    `${service} is unreachable (${unavailableReason(err)}); try again in a few seconds`,
    { retryable: true, cause: err },
  );
}
