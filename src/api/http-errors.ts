/** The single place where error codes become HTTP statuses. Unknown errors never leak details. */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isNornError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

const STATUS: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  SPEC_INVALID: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PIPELINE_UNKNOWN: 422,
  UNAVAILABLE: 503,
};

export function toErrorResponse(err: Error, c: Context, log: Logger) {
  if (err instanceof HTTPException) return err.getResponse();
  const status = isNornError(err) ? (STATUS[err.code] ?? 500) : 500;
  if (status >= 500) log.error({ err, path: c.req.path }, 'request failed');
  const body =
    isNornError(err) && status < 500
      ? { code: err.code, message: err.message, ...(err.details ?? {}) }
      : { code: 'INTERNAL', message: 'internal error' };
  return c.json({ error: body }, status);
}
