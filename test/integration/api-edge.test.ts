/**
 * What every request passes at the edge of the api, over a real socket: the body limit (413 before
 * the body is read, declared or chunked), NUL characters refused with a 400 naming where they are,
 * and listings that are summaries (no spec, source or env value of any app).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testEnv, testSystem } from '../support/norn.js';
import { rawRequest } from '../support/raw-http.js';
import type { NornSystem, RunningApi } from '../../src/system.js';

const TOKEN = 'edge-token-0123456789abcdef';
const MAX = 4_096;
let tdb: TestDatabase;
let system: NornSystem;
let api: RunningApi;

beforeAll(async () => {
  tdb = await createTestDatabase();
  system = testSystem(
    testEnv(tdb.url, { NORN_API_TOKEN: TOKEN, NORN_MAX_BODY_BYTES: String(MAX) }),
  );
  api = await system.startApi(0);
});
afterAll(async () => {
  await system.close();
  await tdb.drop();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const call = (method: string, path: string, body?: string, type = 'application/json') =>
  fetch(`${api.url}${path}`, {
    method,
    headers: { ...auth, 'content-type': type },
    body,
  });
const head = (method: string, path: string, headers: string[]) =>
  [
    `${method} ${path} HTTP/1.1`,
    'Host: x',
    `Authorization: Bearer ${TOKEN}`,
    ...headers,
    '',
    '',
  ].join('\r\n');

describe('the body limit (NORN_MAX_BODY_BYTES)', () => {
  it('answers 413 to a declared Content-Length over the limit before the body arrives', async () => {
    // Only the headers and a few bytes are sent: an api that waited for the body would not answer.
    const answer = await rawRequest(
      api.port,
      `${head('POST', '/api/apps', ['Content-Type: application/json', 'Content-Length: 52428800'])}{"na`,
      { waitMs: 5_000 },
    );
    expect(answer.status).toBe(413);
    expect(answer.text).toMatch(/PAYLOAD_TOO_LARGE/);
    expect(answer.text).toMatch(/larger than 4096 bytes/);
  });

  it('answers 413 to a chunked body once it passes the limit, without waiting for its end', async () => {
    const chunk = `${'a'.repeat(1_000).length.toString(16)}\r\n${'a'.repeat(1_000)}\r\n`;
    const answer = await rawRequest(
      api.port,
      // 5 chunks of 1000 bytes and no terminating chunk: the body never ends.
      `${head('POST', '/api/apps', ['Content-Type: application/json', 'Transfer-Encoding: chunked'])}${chunk.repeat(5)}`,
      { waitMs: 5_000 },
    );
    expect(answer.status).toBe(413);
  });

  it('lets a body under the limit through to the route', async () => {
    const res = await call(
      'POST',
      '/api/apps',
      JSON.stringify({ name: 'edge-small', processes: { web: { port: 19130 } } }),
    );
    expect(res.status).toBe(201);
    const padded = await call('POST', '/api/apps', `${' '.repeat(MAX - 100)}{}`);
    expect(padded.status).toBe(400); // read and parsed: a spec problem, not a size one
    expect((await padded.json()).error.code).toBe('SPEC_INVALID');
  });
});

describe('NUL characters', () => {
  const problemsOf = async (res: Response) => {
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.code).toBe('BAD_REQUEST');
    return error.problems.map((p: { path: string }) => p.path);
  };

  it('in a path parameter or a query parameter: 400 naming it', async () => {
    expect(await problemsOf(await call('GET', '/api/apps/x%00y'))).toEqual(['params.id']);
    expect(await problemsOf(await call('GET', '/api/apps/edge-small/events?limit=1%00'))).toEqual([
      'query.limit',
    ]);
    expect(await problemsOf(await call('GET', '/api/apps?a%00b=1'))).toEqual([
      'query["a\\u0000b"]',
    ]);
    expect(
      await problemsOf(
        await call('POST', '/api/deployments/00000000-0000-0000-0000-000000000000%00/cancel'),
      ),
    ).toEqual(['params.id']);
    expect(await problemsOf(await call('GET', '/api/nothing/here%00'))).toEqual(['path[3]']);
    expect(await problemsOf(await call('GET', '/admin/queues/api/queues?q=%00'))).toEqual([
      'query.q',
    ]);
  });

  it('in a JSON body, at any depth and in keys (even in lists): 400 listing each with its path', async () => {
    const body = JSON.stringify({
      name: 'edge-nul',
      processes: { web: { port: 19131, command: 'run a\u0000b' } },
      env: { OK: 'fine', BAD: 'x\u0000' },
      ['k\u0000']: 1,
      endpoints: [{ url: 'https://a.example', note: ['ok', 'n\u0000'] }],
    });
    expect(await problemsOf(await call('POST', '/api/apps', body))).toEqual([
      'body.processes.web.command',
      'body.env.BAD',
      'body["k\\u0000"]',
      'body.endpoints[0].note[1]',
    ]);
    expect(
      await problemsOf(await call('POST', '/api/apps/edge-small/deploy', '{"ref":"ma\\u0000in"}')),
    ).toEqual(['body.ref']);
    expect((await call('GET', '/api/apps/edge-nul')).status).toBe(404); // nothing was stored
  });

  it('in a YAML body (escaped or raw): 400 naming the field', async () => {
    const yaml = 'name: edge-yaml\nprocesses:\n  web:\n    port: 19132\nenv:\n  A: "x\\0y"\n';
    expect(await problemsOf(await call('POST', '/api/apps', yaml, 'application/yaml'))).toEqual([
      'body.env.A',
    ]);
    const raw = await call(
      'POST',
      '/api/apps',
      'name: edge-yaml\nenv:\n  A: x\u0000y\n',
      'application/yaml',
    );
    expect(raw.status).toBe(400);
  });
});

describe('listings', () => {
  it('GET /api/apps returns summaries: no spec, no source, no env value', async () => {
    const secret = 'hunter2-edge-secret';
    const spec = [
      'name: edge-list',
      'repo: { url: "https://example.invalid/acme/list.git", branch: prod }',
      'processes:',
      '  web: { port: 19133, env: { INNER: inner-secret-value } }',
      '  worker: { command: run }',
      `env: { PASSWORD: ${secret} }`,
      '',
    ].join('\n');
    expect((await call('POST', '/api/apps', spec, 'application/yaml')).status).toBe(201);
    const res = await call('GET', '/api/apps');
    const text = await res.text();
    expect(text).not.toContain(secret);
    expect(text).not.toContain('inner-secret-value');
    expect(text).not.toContain('PASSWORD');
    const listed = JSON.parse(text).apps.find((a: { id: string }) => a.id === 'edge-list');
    expect(listed).toEqual({
      id: 'edge-list',
      target: null,
      repo: { url: 'https://example.invalid/acme/list.git', branch: 'prod' },
      processes: ['web', 'worker'],
      sourceFormat: 'yaml',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      // Never run: nothing holds it, nothing waits, nothing forged.
      status: { forge: 'unforged', latestRun: null, holder: null, queued: 0 },
    });
  });
});
