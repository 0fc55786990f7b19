/** The api's OpenAPI document, built without a server: valid OpenAPI 3.1, listing every /api route. */
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { createApi, type ApiDeps } from '../../src/api/app.js';
import { openApiDocument } from '../../src/api/openapi.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openApiPath, operations, responseChecker } from '../support/openapi.js';

// Routers only keep their dependencies until a request comes: none comes here.
const app = createApi({ queues: [], log: silentLogger, maxBodyBytes: 1024 } as unknown as ApiDeps);
const doc = openApiDocument(app) as unknown as Parameters<typeof operations>[0];

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
    if (!result.valid) console.error(JSON.stringify(result.errors, null, 1));
    expect(result.valid).toBe(true);
  });

  it('describes exactly the routes the api serves under /api', () => {
    const served = new Set(
      app.routes
        .filter((r) => r.path.startsWith('/api/') && r.method !== 'ALL')
        .map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`),
    );
    const documented = new Set(operations(doc).map((o) => `${o.method} ${o.path}`));
    expect([...documented].filter((o) => !served.has(o))).toEqual([]);
    expect([...served].filter((o) => !documented.has(o))).toEqual([]);
    expect(documented.size).toBeGreaterThan(40);
  });

  it('gives each operation a unique id, a summary, a tag, and its error answers', () => {
    const ops = Object.values(doc.paths).flatMap((item) => Object.values(item)) as Array<{
      operationId: string;
      summary?: string;
      tags?: string[];
      responses: Record<string, unknown>;
      security?: unknown[];
    }>;
    expect(new Set(ops.map((o) => o.operationId)).size).toBe(ops.length);
    for (const op of ops) {
      expect(op.summary, op.operationId).toBeTruthy();
      expect(op.tags?.length, op.operationId).toBeGreaterThan(0);
      if (op.operationId === 'getOpenApiDocument') expect(op.security).toEqual([]);
      else
        expect(Object.keys(op.responses), op.operationId).toEqual(
          expect.arrayContaining(['400', '401', '503']),
        );
    }
  });

  it('has the bearer scheme and the session cookie, one of them required by default', () => {
    const d = doc as unknown as {
      security: unknown[];
      components: { securitySchemes: Record<string, Record<string, string>> };
      paths: Record<string, Record<string, { security?: unknown[]; responses: object }>>;
    };
    expect(d.security).toEqual([{ bearerToken: [] }, { sessionCookie: [] }]);
    expect(d.components.securitySchemes.bearerToken).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    expect(d.components.securitySchemes.sessionCookie).toMatchObject({
      type: 'apiKey',
      in: 'cookie',
      name: 'norn_session',
    });
    // Login and logout are open; what changes something with the cookie can answer 403.
    expect(d.paths['/api/session']!.post!.security).toEqual([]);
    expect(d.paths['/api/session']!.delete!.security).toEqual([]);
    expect(Object.keys(d.paths['/api/session']!.post!.responses)).not.toContain('403');
    expect(Object.keys(d.paths['/api/apps/{id}/deploy']!.post!.responses)).toContain('403');
    expect(Object.keys(d.paths['/api/apps/{id}']!.get!.responses)).not.toContain('403');
  });

  it('checks answers strictly enough that a wrong one fails', () => {
    const check = responseChecker(doc);
    const app = {
      id: 'web',
      spec: { name: 'web' },
      sourceFormat: 'yaml',
      createdAt: '2026-01-02T03:04:05.678Z',
      updatedAt: '2026-01-02T03:04:05.678Z',
    };
    expect(() => check('POST', '/api/apps', 201, { app })).not.toThrow();
    expect(() => check('POST', '/api/apps', 201, { app: { ...app, extra: 1 } })).toThrow(/schema/);
    expect(() =>
      check('POST', '/api/apps', 201, { app: { ...app, createdAt: 'yesterday' } }),
    ).toThrow(/schema/);
    expect(() => check('POST', '/api/apps', 418, {})).toThrow(/does not list/);
    const id = '8383b7f6-7b5e-4163-9151-3c105369549d';
    const accepted = {
      runId: id,
      deploymentId: id,
      sagaId: id,
      scope: 'app:web',
      status: 'running',
      position: 0,
    };
    expect(() =>
      check('POST', '/api/runs/{id}/resume', 202, { ...accepted, resumedFrom: id }),
    ).not.toThrow();
    expect(() => check('POST', '/api/runs/{id}/resume', 202, accepted)).toThrow(/resumedFrom/);
    expect(() =>
      check('POST', '/api/apps/{id}/deploy', 202, { ...accepted, resumedFrom: id }),
    ).toThrow();
    expect(() =>
      check('GET', '/api/apps/{id}', 404, { error: { code: 'NOT_FOUND', message: 'no app x' } }),
    ).not.toThrow();
    expect(() =>
      check('GET', '/api/apps/{id}', 404, { error: { code: 'NOPE', message: 'x' } }),
    ).toThrow();
  });
});
