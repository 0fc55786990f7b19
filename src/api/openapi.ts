/**
 * The OpenAPI 3.1 document of the api, generated from the route definitions the routers serve
 * (src/shared/api), and `GET /api/openapi.json`, which answers it.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import {
  BEARER,
  bearerScheme,
  documentConfig,
  getOpenApiDocument,
} from '../shared/api/document.js';

/** package.json's version (the document's info.version). */
const VERSION = '0.1.0';

/** The document of `app` (createApi's), as served. */
export function openApiDocument(app: OpenAPIHono) {
  return app.getOpenAPI31Document(documentConfig(VERSION));
}

/** Registers the bearer scheme and `GET /api/openapi.json` on the root app (after every route). */
export function serveOpenApiDocument(app: OpenAPIHono): void {
  app.openAPIRegistry.registerComponent('securitySchemes', BEARER, bearerScheme);
  let doc: ReturnType<typeof openApiDocument> | undefined;
  app.openapi(getOpenApiDocument, (c) => c.json((doc ??= openApiDocument(app)), 200));
}
