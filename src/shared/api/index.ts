/**
 * The api's contract: the schemas of its requests and answers, the TypeScript types inferred from
 * them (what the CLI and the dashboard read responses as), and the route definitions the api
 * serves and documents at /api/openapi.json. Import types with `import type` in a browser bundle.
 */
export * from './schemas.js';
export * as appRoutes from './apps.js';
export * as runRoutes from './runs.js';
export * as stackRoutes from './stacks.js';
export * as webhookRoutes from './webhooks.js';
export * as sessionRoutes from './session.js';
export { LoginBody, SessionView } from './session.js';
export { OPENAPI_PATH, documentConfig, getOpenApiDocument } from './document.js';
export { errors, intQuery, json, IdParam, TAGS } from './http.js';
