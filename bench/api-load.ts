/**
 * `npm run bench:api`: the api under a steady load, so that regressions show. For a fixed time
 * each (BENCH_API_SECONDS, default 5), BENCH_API_CONCURRENCY (default 16) clients keep sending
 *   - GET /baseline: a trivial Hono route on the same server (the baseline, same run, same client),
 *   - GET /api/apps/:id: an app with its lease, scopes and forge state (PostgreSQL reads),
 *   - POST /api/apps/:id/deploy: a deploy requested (a run recorded and its flow enqueued), over
 *     BENCH_API_APPS (default 100) apps; no worker runs them, only the answers count.
 * and the bench prints requests/s, p50 and p99 of each with their ratio to the baseline.
 *
 * Env: REDIS_URL, DATABASE_URL (a bench database is created next to it).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { loadConfig } from '../src/shared/config.js';
import { silentLogger } from '../src/shared/logger.js';
import { createRedis } from '../src/shared/redis.js';
import { NornSystem } from '../src/system.js';
import { bench, pipelines } from './pipelines.js';
import { summarize } from './report.js';
import { checkPostgres, checkRedis, createBenchDatabase, removeKeys } from './services.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const SECONDS = Number(process.env.BENCH_API_SECONDS || 5);
const CONCURRENCY = Number(process.env.BENCH_API_CONCURRENCY || 16);
const APPS = Number(process.env.BENCH_API_APPS || 100);
const TOKEN = randomBytes(24).toString('base64url');

interface Load {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
}

/** CONCURRENCY lanes sending `make()` for SECONDS; every answer must have status `expect`. */
async function load(make: (i: number) => [string, RequestInit], expect: number): Promise<Load> {
  const times: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  const lane = async () => {
    while (performance.now() < end) {
      const [url, init] = make(n++);
      const t0 = performance.now();
      const res = await fetch(url, init);
      await res.arrayBuffer();
      times.push(performance.now() - t0);
      if (res.status !== expect) throw new Error(`${url} answered ${res.status}, not ${expect}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const wall = (performance.now() - t0) / 1000;
  return { ...summarize(times), rps: times.length / wall, requests: times.length };
}

async function main() {
  await checkRedis(REDIS_URL);
  await checkPostgres(DATABASE_URL);
  const prefix = `apib${randomBytes(4).toString('hex')}`;
  const bdb = await createBenchDatabase(
    DATABASE_URL,
    `norn_bench_${randomBytes(5).toString('hex')}`,
  );
  const system = new NornSystem(
    loadConfig({
      REDIS_URL,
      DATABASE_URL: bdb.url,
      NORN_QUEUE_PREFIX: prefix,
      NORN_DEPLOY_PIPELINE: bench.name,
      NORN_MIGRATE_ON_START: 'false',
      NORN_API_TOKEN: TOKEN,
      LOG_LEVEL: 'silent',
    }),
    { pipelines, services: undefined, log: silentLogger },
  );
  const outer = new Hono();
  outer.get('/baseline', (c) => c.json({ ok: true }));
  outer.route('/', system.createApi());
  const server = serve({ fetch: outer.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  try {
    const apps = Array.from({ length: APPS }, (_, i) => `api-${String(i).padStart(3, '0')}`);
    for (const id of apps) {
      const spec = { name: id, processes: { web: { port: 8080 } } };
      await system.apps.upsert(id, spec, JSON.stringify(spec), 'json');
    }
    const baseline = (): [string, RequestInit] => [`${base}/baseline`, {}];
    const getApp = (i: number): [string, RequestInit] => [
      `${base}/api/apps/${apps[i % APPS]}`,
      { headers: auth },
    ];
    const deploy = (i: number): [string, RequestInit] => [
      `${base}/api/apps/${apps[i % APPS]}/deploy`,
      {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ ref: 'main' }),
      },
    ];
    // Warm-up: connections, JIT, the PostgreSQL pool.
    await load(baseline, 200);
    await load(getApp, 200);
    const rows: Array<[string, Load]> = [
      ['GET /baseline (trivial Hono route)', await load(baseline, 200)],
      ['GET /api/apps/:id', await load(getApp, 200)],
      ['POST /api/apps/:id/deploy', await load(deploy, 202)],
    ];
    const b = rows[0]![1];
    console.log(`${CONCURRENCY} clients, ${SECONDS} s per route, one api process, ${APPS} apps\n`);
    console.log(
      '| route | requests | req/s | p50 ms | p99 ms | req/s vs baseline | p99 vs baseline |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, r] of rows)
      console.log(
        `| ${name} | ${r.requests} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${(r.rps / b.rps).toFixed(2)}x | ${(r.p99 / b.p99).toFixed(1)}x |`,
      );
    console.log(
      '\nAbsolute figures depend on the machine; the ratios, measured in this run, are the result.',
    );
  } finally {
    server.close();
    await system.close();
    const r = createRedis(REDIS_URL, 'client', silentLogger);
    await removeKeys(r, prefix);
    await r.quit();
    await bdb.drop();
  }
}

await main();
