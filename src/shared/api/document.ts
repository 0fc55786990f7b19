/**
 * The OpenAPI 3.1 document's frame: info, servers, the bearer scheme and tags. Its paths come
 * from the routes the api serves (src/api/app.ts registers them; `GET /api/openapi.json`).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { TAGS } from './http.js';

export const OPENAPI_PATH = '/api/openapi.json';

export const BEARER = 'bearerToken';
export const SESSION = 'sessionCookie';

export const documentConfig = (version: string) => ({
  openapi: '3.1.0',
  info: {
    title: 'norn api',
    version,
    description:
      'The control plane api of norn (self-hosted deployments). Every /api route needs `Authorization: Bearer <NORN_API_TOKEN>` (or the dashboard session cookie) except this document and logging in and out. Errors answer `{error: {code, message, ...details}}`. Live events stream on /ws (not described here).',
  },
  security: [{ [BEARER]: [] }, { [SESSION]: [] }] as Array<Record<string, string[]>>,
  tags: TAGS.map((t) => ({ ...t })),
});

/** The dashboard's session (POST /api/session); unsafe methods also need a same-host Origin. */
export const sessionScheme = {
  type: 'apiKey' as const,
  in: 'cookie' as const,
  name: 'norn_session',
  description:
    'The dashboard session from POST /api/session. With the cookie alone, POST/PUT/PATCH/DELETE need an Origin header naming this host (else 403).',
};

export const bearerScheme = {
  type: 'http' as const,
  scheme: 'bearer',
  description: 'NORN_API_TOKEN',
};

/** GET /api/openapi.json: this document (no token needed). */
export const getOpenApiDocument = createRoute({
  method: 'get',
  path: OPENAPI_PATH,
  tags: ['meta'],
  operationId: 'getOpenApiDocument',
  summary: 'This OpenAPI 3.1 document',
  security: [],
  responses: {
    200: {
      description: 'The document.',
      content: {
        'application/json': {
          schema: z.object({ openapi: z.string() }).catchall(z.unknown()),
        },
      },
    },
  },
});
