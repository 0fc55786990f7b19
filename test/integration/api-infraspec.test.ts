/**
 * Issue 7 through the api (in process, on real PostgreSQL and Redis): POST /api/apps refuses, with
 * a 400 listing `{path, message}`, every spec the deploy would refuse later; what it stores parses
 * again, as each deploy step parses it; a deploy request's ref is held to repo.branch's rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/pipelines/deploy/docker-runtime.js';
import type { NornSystem } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { aSpec, billionLaughs, REPROS } from '../support/infraspec.js';
import { testEnv, testSystem } from '../support/norn.js';

const TOKEN = 'test-token-spec-0123456789abcdef';
let tdb: TestDatabase;
let system: NornSystem;
let app: ReturnType<NornSystem['createApi']>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  system = testSystem(testEnv(tdb.url, { NORN_API_TOKEN: TOKEN }));
  app = system.createApi();
});
afterAll(async () => {
  await system.close();
  await tdb.drop();
});

const call = (method: string, path: string, body?: string | object, type?: string) =>
  app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      'content-type': type ?? 'application/json',
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });

async function refused(res: Response): Promise<Array<{ path: string; message: string }>> {
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as {
    error: { code: string; problems: Array<{ path: string; message: string }> };
  };
  expect(error.code).toBe('SPEC_INVALID');
  return error.problems;
}

describe('POST /api/apps refuses what the deploy would refuse', () => {
  // A NUL never reaches the parser: the edge (src/api/edge.ts) refuses it first, tested below.
  const parsed = REPROS.filter((r) => !r.label.includes('NUL'));
  it.each(parsed)('$label: 400 naming $path, nothing stored', async ({ spec, path, message }) => {
    const problems = await refused(await call('POST', '/api/apps', spec));
    expect(problems).toContainEqual({ path, message: expect.stringMatching(message) });
    expect((await call('GET', `/api/apps/${String(spec.name)}`)).status).toBe(404);
  });

  it.each([
    [
      'processes:\n  web:\n    port: 80\n    health: {path: /, timeout: 1e308}\n',
      'processes.web.health.timeout',
    ],
    ['processes:\n  job: {schedule: "61 * * * *", command: run}\n', 'processes.job.schedule'],
    ['processes:\n  job: {schedule: "* * 31 2 *", command: run}\n', 'processes.job.schedule'],
    ['processes:\n  web: {port: 65535, replicas: 2147483648}\n', 'processes.web.replicas'],
    [
      'processes:\n  web: {port: 80}\ndeployPolicy: {minHealthyTime: 0s}\n',
      'deployPolicy.minHealthyTime',
    ],
  ])('refuses the YAML form too: %j', async (yaml, path) => {
    const problems = await refused(
      await call('POST', '/api/apps', `name: yaml-app\n${yaml}`, 'application/yaml'),
    );
    expect(problems.map((p) => p.path)).toContain(path);
  });

  it.each([
    [
      'JSON',
      JSON.stringify({ name: 'nul-app', env: { A: 'nul \u0000 here' } }),
      'application/json',
    ],
    ['YAML', 'name: nul-app\nenv: {A: "nul \\0 here"}\n', 'application/yaml'],
  ])(
    'refuses a NUL in a %s spec at the edge with a 400 naming the field',
    async (_, body, type) => {
      const res = await call('POST', '/api/apps', body, type);
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as {
        error: { code: string; problems: Array<{ path: string; message: string }> };
      };
      expect(error.code).toBe('BAD_REQUEST');
      expect(error.problems).toEqual([
        { path: 'body.env.A', message: 'must not contain a NUL character (\\u0000)' },
      ]);
      expect((await call('GET', '/api/apps/nul-app')).status).toBe(404);
    },
  );

  it('refuses an alias bomb with a 400, and keeps serving', async () => {
    const bomb = billionLaughs();
    const problems = await refused(await call('POST', '/api/apps', bomb, 'application/yaml'));
    expect(problems).toEqual([{ path: '', message: expect.stringMatching(/alias/) }]);
    expect((await call('GET', '/api/apps')).status).toBe(200);
  });
});

describe('what registration stores is what the deploy parses', () => {
  it('stores a spec at the edges of every rule that every deploy step parses back to itself', async () => {
    const spec = aSpec({
      name: 'edge-app',
      repo: { url: 'https://git.example.com/edge.git', branch: 'release/1.2' },
      processes: {
        web: { port: 65436, replicas: 100, health: { path: '/healthz', timeout: '1ns' } },
        job: { schedule: '0 0 29 2 *', timezone: 'Pacific/Kiritimati', command: 'run' },
      },
      endpoints: [{ url: 'https://edge.example.com/v1' }],
      deployPolicy: { minHealthyTime: 29.5, healthTimeout: 30 },
    });
    expect((await call('POST', '/api/apps', spec)).status).toBe(201);
    const stored = await system.apps.get('edge-app');
    expect(stored).not.toBeNull();
    expect(parseSpec(stored!.spec)).toEqual(stored!.spec);
    expect(stored!.spec).toMatchObject({
      deployPolicy: { minHealthyTime: '29.5', healthTimeout: '30' },
    });
  });

  it('refuses to deploy a spec stored before a rule it breaks, before any run starts', async () => {
    const old = aSpec({ name: 'old-app', deployPolicy: { minHealthyTime: '0s' } });
    await system.apps.upsert('old-app', old, JSON.stringify(old), 'json'); // as an older norn stored it
    const problems = await refused(await call('POST', '/api/apps/old-app/deploy', {}));
    expect(problems).toEqual([
      { path: 'deployPolicy.minHealthyTime', message: expect.stringMatching(/nobody watched/) },
    ]);
    const runs = await (await call('GET', '/api/apps/old-app/deployments')).json();
    expect(runs).toEqual({ deployments: [] });
  });

  it.each([
    ['release..1', /ref is not a ref git accepts: it contains "\.\."/],
    ['feature+x', /ref must be a branch, tag or commit SHA/],
    ['x.lock', /ref is not a ref git accepts/],
  ])('answers a deploy of ref %s with the rule repo.branch is held to', async (ref, message) => {
    const res = await call('POST', '/api/apps/edge-app/deploy', { ref });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
  });
});
