/**
 * The pieces every route definition is made of: JSON content, the error answers, path and query
 * parameters. A route is a `createRoute({...})` in one of the area files next to this one; the
 * api serves it with `router.openapi(route, handler)` (src/api/routes/*.ts), which validates its
 * params and query with the schemas given here, and the document at /api/openapi.json is
 * generated from the same definitions.
 */
import { z } from '@hono/zod-openapi';
import { ErrorBody } from './schemas.js';

/** `{description, content: {'application/json': {schema}}}`. */
export const json = <S extends z.ZodType>(schema: S, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const ERROR_DESCRIPTIONS = {
  400: 'The request is malformed (BAD_REQUEST: a bad parameter or body, a NUL character) or its spec is invalid (SPEC_INVALID, with its problems).',
  401: 'The bearer token (or the dashboard session cookie) is missing or wrong (UNAUTHORIZED).',
  404: 'No such resource (NOT_FOUND).',
  409: 'The request conflicts with what exists or runs now (CONFLICT); the error names what is in the way.',
  413: 'The request body is larger than NORN_MAX_BODY_BYTES (PAYLOAD_TOO_LARGE).',
  422: 'The pipeline the request needs is not registered here (PIPELINE_UNKNOWN).',
  503: 'PostgreSQL or Redis is unreachable (UNAVAILABLE); nothing was recorded, retry after Retry-After seconds.',
} as const;

export type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;
type ErrorResponse = ReturnType<typeof json<typeof ErrorBody>>;

/**
 * The error answers of a route: 400, 401, 413 and 503 (any /api route can answer them: the token,
 * the NUL check and the body limit run before every route, and every route reads PostgreSQL) plus
 * the ones named.
 */
export function errors<const S extends ErrorStatus>(
  ...extra: S[]
): Record<S | 400 | 401 | 413 | 503, ErrorResponse> {
  const statuses = [...new Set<ErrorStatus>([400, 401, 413, 503, ...extra])].sort();
  return Object.fromEntries(
    statuses.map((s) => [s, json(ErrorBody, ERROR_DESCRIPTIONS[s])]),
  ) as Record<S | 400 | 401 | 413 | 503, ErrorResponse>;
}

/** `{id}` in a path. */
export const IdParam = (description: string) =>
  z.object({
    id: z
      .string()
      .min(1)
      .openapi({ param: { name: 'id', in: 'path' }, description }),
  });

/**
 * An integer query parameter from `min` to `max` (absent: `fallback`, or undefined). Parsed like
 * `Number()`, so `limit=20` and `limit=2e1` are the same; anything else is a 400.
 */
export function intQuery(
  min: number,
  max: number,
  description: string,
): z.ZodOptional<z.ZodCoercedNumber<unknown>>;
export function intQuery(
  min: number,
  max: number,
  description: string,
  fallback: number,
): z.ZodDefault<z.ZodCoercedNumber<unknown>>;
export function intQuery(min: number, max: number, description: string, fallback?: number) {
  const error = `must be an integer from ${min} to ${max}`;
  const n = z.coerce
    .number({ error })
    .int({ error })
    .min(min, { error })
    .max(max, { error })
    .openapi({ description });
  return fallback === undefined ? n.optional() : n.default(fallback);
}

/** Tags group the operations in the document (and in generated clients). */
export const TAGS = [
  {
    name: 'apps',
    description: 'Apps registered from their infraspec, their runs, drift and events.',
  },
  { name: 'snapshots', description: "An app's database snapshots, and restoring one." },
  { name: 'forge', description: 'Forge and teardown of kubernetes and nomad apps.' },
  { name: 'runs', description: 'A run with its steps and events; cancel and resume.' },
  {
    name: 'deployments',
    description:
      'The run routes under their earlier name (/api/deployments, /api/sagas), answering in their earlier shapes.',
  },
  { name: 'scopes', description: 'Who holds a scope and what waits there.' },
  {
    name: 'stacks',
    description: 'Stacks (OpenTofu) registered from their spec: runs, drift, plans.',
  },
  { name: 'alerts', description: 'How recent alert deliveries ended.' },
  {
    name: 'webhooks',
    description: 'Webhook deliveries received from git forges, replays, refusals.',
  },
  {
    name: 'session',
    description: 'Dashboard login: the api token exchanged for an HttpOnly session cookie.',
  },
  { name: 'meta', description: 'This document.' },
] as const;
export type Tag = (typeof TAGS)[number]['name'];
