/**
 * Redis restarted mid-run: a Redis of the test's own, configured as production should be (AOF,
 * `appendfsync everysec`, noeviction), is shut down and started again while runs are in their
 * steps and others wait in their apps' queues. The runs in flight end (succeeded, or failed with
 * their error), the queued ones start afterwards, the api and the worker reconnect by themselves,
 * /readyz says Redis is down meanwhile, and /ws clients get every event once: one that stayed
 * connected through the outage, and one that reconnects with its lastEventId.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NornSystem, RunningApi } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ownRedis, type Service } from '../support/outage.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';
import { connectWs } from '../support/ws.js';

const REDIS_PORT = 19130;
const TOKEN = 'redis-restart-token-0123456789';
const APPS = ['rr-0', 'rr-1', 'rr-2'];

let redis: Service;
let tdb: TestDatabase;
let system: NornSystem;
let api: RunningApi;

beforeAll(async () => {
  [redis, tdb] = await Promise.all([ownRedis(REDIS_PORT, { aof: true }), createTestDatabase()]);
  system = testSystem(
    testEnv(tdb.url, { REDIS_URL: redis.url, NORN_API_TOKEN: TOKEN, NORN_WORKER_CONCURRENCY: '4' }),
  );
  await system.startWorker();
  api = await system.startApi(0);
  for (const app of APPS) await registerApp(system, app);
}, 60_000);

afterAll(async () => {
  await system?.close();
  await redis?.destroy();
  await tdb?.drop();
});

describe('Redis restarted mid-run', () => {
  it('runs in flight end, queued runs start after, processes reconnect, /ws misses nothing', async () => {
    const stays = await connectWs(api.url, { app: APPS[0]!, lastEventId: 0 }, { token: TOKEN });
    const leaves = await connectWs(api.url, { app: APPS[0]!, lastEventId: 0 }, { token: TOKEN });
    const sleepMs = { s2: 400, s3: 400, s4: 400, s5: 400, s6: 400 };
    const runs = [];
    for (const appId of APPS)
      for (let i = 0; i < 2; i++)
        // the second waits behind the first: one run per app at a time
        runs.push(await system.runs.request({ appId, pipeline: 'chain', params: { sleepMs } }));
    const ids = runs.map((r) => r.deploymentId);

    // Mid-run: every first run has started its steps; the second ones wait.
    await waitFor(
      async () =>
        (await Promise.all(ids.map((id) => system.store.getRun(id)))).filter(
          (r) => r?.status === 'running',
        ).length === APPS.length,
      'the first run of each app to be running',
      20_000,
    );
    leaves.close();
    const lastSeen = leaves.events.at(-1)!;
    await redis.stop();
    const down = await fetch(`${api.url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ ok: false, redis: 'unavailable', postgres: 'ok' });
    await new Promise((r) => setTimeout(r, 2_000));
    await redis.start();

    const ended = await Promise.all(ids.map((id) => waitForRun(system, id, undefined, 90_000)));
    for (const run of ended) {
      expect(['succeeded', 'failed'], run.id).toContain(run.status);
      if (run.status === 'failed') expect(run.error, run.id).toBeTruthy();
    }
    // The queued runs ran after the outage, and to the end.
    for (const [i, run] of ended.entries())
      if (i % 2 === 1) expect(run.status, run.error ?? '').toBe('succeeded');
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(200);

    // What PostgreSQL holds for the app is what each client got: once each, in order.
    const stored = async () =>
      (await system.events.byAppNewestFirst(APPS[0]!, undefined, 500)).reverse();
    const all = await stored();
    await waitFor(
      async () => stays.events.length >= all.length,
      `the client that stayed to get all ${all.length} events (has ${stays.events.length})`,
      20_000,
    );
    expect(stays.events.map((e) => e.id)).toEqual(all.map((e) => e.id));
    const back = await connectWs(
      api.url,
      { app: APPS[0]!, lastEventId: lastSeen.id },
      { token: TOKEN },
    );
    const missed = all.filter((e) => e.id > lastSeen.id);
    expect(missed.length).toBeGreaterThan(0);
    await waitFor(async () => back.events.length >= missed.length, 'the missed events', 20_000);
    await new Promise((r) => setTimeout(r, 300)); // anything extra would show up now
    expect([...leaves.events, ...back.events].map((e) => e.id)).toEqual(all.map((e) => e.id));
    stays.close();
    back.close();
  }, 150_000);
});
