/**
 * A real api process on a Redis and a PostgreSQL of the test's own, stopped and started under it:
 * while one is down the api answers 503 with Retry-After (never 500, never a hang), /readyz says
 * which within 2 s, nothing is recorded for a refused run, and the api serves again once it is back.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/norn.js';
import { ownPostgres, ownRedis, type Service } from '../support/outage.js';
import { spawnNorn, TEST_PIPELINES } from '../support/processes.js';

const REDIS_PORT = 19110;
const PG_PORT = 19111;
const TOKEN = 'outage-token-0123456789abcdef';
const APP = 'h7a-outage';

let redis: Service;
let pg: Service;
beforeAll(async () => {
  [redis, pg] = await Promise.all([ownRedis(REDIS_PORT), ownPostgres(PG_PORT)]);
}, 120_000);
afterAll(async () => {
  await Promise.all([redis?.destroy(), pg?.destroy()]);
});

const timed = async (work: () => Promise<Response>) => {
  const t0 = Date.now();
  const res = await work();
  return { res, ms: Date.now() - t0, body: await res.json() };
};

async function startApi() {
  await Promise.all([redis.start(), pg.start()]); // an earlier test may have left one stopped
  const api = spawnNorn('api', {
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    NORN_API_TOKEN: TOKEN,
    NORN_QUEUE_PREFIX: `t${randomBytes(5).toString('hex')}`,
    NORN_PIPELINES_MODULE: TEST_PIPELINES,
    NORN_DEPLOY_PIPELINE: 'chain',
    NORN_MIGRATE_ON_START: 'true',
    NORN_SWEEP_INTERVAL_MS: '500',
    PORT: '0',
  });
  await api.waitForLog('api listening', 60_000);
  const base = /"url":"(http:\/\/[^"]+)"/.exec(api.output())![1]!;
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  const ready = () => timed(() => fetch(`${base}/readyz`, { signal: AbortSignal.timeout(15_000) }));
  const spec = { name: APP, processes: { web: { port: 19112 } } };
  expect((await call('POST', '/api/apps', spec)).status).toBeLessThan(300);
  const stillServing = () => {
    expect(api.child.exitCode).toBeNull();
    expect(api.output()).not.toMatch(/unhandled promise rejection|request failed/);
  };
  return { call, ready, spec, stillServing };
}

describe('the api while PostgreSQL or Redis is down', () => {
  it('PostgreSQL down: GET and POST answer 503 with Retry-After, /readyz within 2 s; back: 200', async () => {
    const { call, ready, spec, stillServing } = await startApi();
    await pg.stop();
    for (const [method, path, body] of [
      ['GET', '/api/apps'],
      ['GET', `/api/apps/${APP}`],
      ['POST', '/api/apps', spec],
      ['POST', `/api/apps/${APP}/deploy`, {}],
    ] as const) {
      const { res, body: answer } = await timed(() => call(method, path, body));
      expect(res.status, `${method} ${path}`).toBe(503);
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(answer.error).toMatchObject({ code: 'UNAVAILABLE' });
      expect(answer.error.message).toMatch(/PostgreSQL is unreachable/);
    }
    const down = await ready();
    expect(down.res.status).toBe(503);
    expect(down.body).toMatchObject({ ok: false, postgres: 'unavailable', redis: 'ok' });
    expect(down.ms).toBeLessThan(2_000);

    await pg.start();
    await waitFor(async () => (await call('GET', '/api/apps')).status === 200, 'PostgreSQL back');
    expect((await call('POST', `/api/apps/${APP}/deploy`, {})).status).toBe(202);
    stillServing();
  }, 120_000);

  it('Redis down: /readyz answers 503 within 2 s, a deploy 503 at once and records nothing; back: 202', async () => {
    const { call, ready, stillServing } = await startApi();
    const before = (await (await call('GET', `/api/apps/${APP}/deployments`)).json()).deployments;
    await redis.stop();
    const down = await ready();
    expect(down.res.status).toBe(503);
    expect(down.body).toMatchObject({ ok: false, postgres: 'ok', redis: 'unavailable' });
    expect(down.ms).toBeLessThan(2_000);
    const refused = await timed(() => call('POST', `/api/apps/${APP}/deploy`, {}));
    expect(refused.res.status).toBe(503);
    expect(refused.res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.body.error.message).toMatch(/Redis is unreachable/);
    expect(refused.ms).toBeLessThan(3_000);
    // Nothing was recorded for the refused request, and what needs only PostgreSQL still works.
    const runs = await call('GET', `/api/apps/${APP}/deployments`);
    expect(runs.status).toBe(200);
    expect((await runs.json()).deployments).toEqual(before);
    expect((await call('GET', `/api/apps/${APP}`)).status).toBe(200);

    await redis.start();
    await waitFor(async () => (await ready()).res.status === 200, 'Redis back', 30_000);
    expect((await call('POST', `/api/apps/${APP}/deploy`, {})).status).toBe(202);
    stillServing();
  }, 120_000);
});
