/**
 * The OpenAPI 3.1 document of the api, generated from the route definitions the routers serve
 * (src/shared/api), and `GET /api/openapi.json`, which answers it.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import {
  BEARER,
  SESSION,
  sessionScheme,
  bearerScheme,
  documentConfig,
  getOpenApiDocument,
} from '../shared/api/document.js';

/** package.json's version (the document's info.version). */
const VERSION = '0.1.0';

const UNSAFE = ['post', 'put', 'patch', 'delete'] as const;

/**
 * The document of `app` (createApi's), as served. An operation that changes something can also
 * answer 403 (the session cookie alone, from another origin: src/api/auth.ts), which the auth
 * middleware, not the route, decides, so it is added here to every such operation that needs auth.
 */
export function openApiDocument(app: OpenAPIHono) {
  const doc = app.getOpenAPI31Document(documentConfig(VERSION));
  for (const item of Object.values(doc.paths ?? {}))
    for (const method of UNSAFE) {
      const op = item[method];
      if (!op || (op.security && op.security.length === 0)) continue;
      op.responses ??= {};
      op.responses[403] = {
        description:
          'The session cookie alone authenticated a request that changes something, and its Origin header does not name this host (FORBIDDEN).',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
  return doc;
}

/** Registers the bearer scheme and `GET /api/openapi.json` on the root app (after every route). */
export function serveOpenApiDocument(app: OpenAPIHono): void {
  app.openAPIRegistry.registerComponent('securitySchemes', BEARER, bearerScheme);
  app.openAPIRegistry.registerComponent('securitySchemes', SESSION, sessionScheme);
  let doc: ReturnType<typeof openApiDocument> | undefined;
  app.openapi(getOpenApiDocument, (c) => c.json((doc ??= openApiDocument(app)), 200));
}
