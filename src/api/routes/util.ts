import { OpenAPIHono, type RouteConfig, type z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { NornError } from '../../shared/errors.js';
import { formatPath } from '../../shared/spec/problems.js';
import { parseInfraspec, type Infraspec } from '../../shared/spec/infraspec.js';
import type { SpecProblem } from '../../shared/spec/problems.js';
import type { Redis } from '../../shared/redis.js';

/**
 * Refuses, before anything is recorded, a request that must reach Redis (starting, cancelling or
 * resuming a run) while the api's connection to it is down: a 503 the client can simply retry.
 */
export function requireRedis(redis: Redis): void {
  if (redis.status !== 'ready') {
    throw new NornError(
      'UNAVAILABLE',
      `Redis is unreachable (${redis.status}), so no run can be started or stopped; nothing was recorded, try again in a few seconds`,
      { retryable: true },
    );
  }
}

/** Parses a JSON object body; an empty body is `{}` when optional. Bad JSON is a 400, not a 500. */
export async function readJson(
  c: Context,
  opts: { optional?: boolean } = {},
): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (!text.trim()) {
    if (opts.optional) return {};
    throw new NornError('BAD_REQUEST', 'expected a JSON body');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new NornError('BAD_REQUEST', `body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new NornError('BAD_REQUEST', 'expected a JSON object');
  return body as Record<string, unknown>;
}

/** App env values may hold credentials people should have put in secrets: never echo them back. */
export function publicSpec(spec: Record<string, unknown>): Record<string, unknown> {
  const hide = (env: unknown) =>
    env && typeof env === 'object'
      ? Object.fromEntries(Object.keys(env).map((k) => [k, '[hidden]']))
      : env;
  const processes = spec.processes as Record<string, Record<string, unknown>> | undefined;
  return {
    ...spec,
    ...(spec.env ? { env: hide(spec.env) } : {}),
    ...(processes
      ? {
          processes: Object.fromEntries(
            Object.entries(processes).map(([k, p]) => [k, p.env ? { ...p, env: hide(p.env) } : p]),
          ),
        }
      : {}),
  };
}

/** The 400 body of a refused spec (an infraspec, a stack): every problem with its path. */
export const specInvalid = (message: string, parsed: { problems: SpecProblem[] }) => ({
  error: { code: 'SPEC_INVALID' as const, message, problems: parsed.problems },
});

/** A query parameter as an integer from `min` to `max`; `fallback` when absent, else a 400. */
export function clampInt(
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new NornError('BAD_REQUEST', `expected an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

/**
 * The app's stored spec checked against today's rules: a spec stored before a rule was added may
 * fail it, and a run should hear so now (SPEC_INVALID listing the problems), not after clone,
 * build and test.
 */
export function storedSpec(app: { id: string; spec: Record<string, unknown> }): Infraspec {
  const parsed = parseInfraspec(app.spec);
  if (parsed.ok) return parsed.spec;
  throw new NornError(
    'SPEC_INVALID',
    `the stored infraspec of app ${app.id} has ${parsed.problems.length} problem(s); register it again`,
    { details: { problems: parsed.problems } },
  );
}

/**
 * A request part that failed its schema, as the api's 400: `{error: {code: 'BAD_REQUEST',
 * message, problems}}`, every problem with its place (`query.limit`, `params.id`, `body.ref`).
 */
export function invalidInput(target: string, error: z.ZodError): NornError {
  const where = target === 'json' ? 'body' : target === 'param' ? 'params' : target;
  const problems = error.issues.map((i) => ({
    path: formatPath([where, ...i.path]),
    message: i.message,
  }));
  return new NornError('BAD_REQUEST', problems.map((p) => `${p.path}: ${p.message}`).join('; '), {
    details: { problems },
  });
}

/**
 * A router of /api routes: `router.openapi(route, handler)` serves a route definition from
 * src/shared/api, validating its params and query with the definition's schemas (a failure is the
 * api's 400) and adding it to the OpenAPI document.
 */
export function router() {
  return new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw invalidInput(result.target, result.error);
    },
  });
}

/**
 * A route whose body the handler reads itself, as text whatever its content type (YAML or JSON
 * specs; JSON bodies that curl sends as form data): the whole definition goes into the document,
 * while what is served validates its params and query only (the handler calls `jsonBody` or
 * parses the spec).
 */
export function bodyReadByHandler<R extends RouteConfig>(
  app: OpenAPIHono,
  route: R,
): Omit<R, 'request'> & { request: Omit<NonNullable<R['request']>, 'body'>; hide: true } {
  app.openAPIRegistry.registerPath(route);
  const { body: _body, ...request } = route.request ?? {};
  return { ...route, request, hide: true } as Omit<R, 'request'> & {
    request: Omit<NonNullable<R['request']>, 'body'>;
    hide: true;
  };
}

/** An optional JSON object body (empty is `{}`) checked against `schema`: bad is a 400. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const parsed = schema.safeParse(await readJson(c, { optional: true }));
  if (!parsed.success) throw invalidInput('json', parsed.error);
  return parsed.data;
}
