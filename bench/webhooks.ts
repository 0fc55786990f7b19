/**
 * `npx tsx bench/webhooks.ts`: how fast a verified GitHub delivery is answered. Each delivery is
 * a push to the default branch of an app with autoDeploy, signed with the app's secret, so the
 * api verifies it, records it and enqueues a deploy run (no worker runs: only the answer counts).
 * The baseline is a trivial Hono route on the same server, measured in the same run over the same
 * HTTP client, so the ratio says what webhook handling adds, whatever the machine.
 *
 * Env: REDIS_URL, DATABASE_URL (the bench database is created next to it), BENCH_DELIVERIES
 * (default 500), BENCH_CONCURRENCY (default 1).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { signFor } from '../src/gitops/webhook-signature.js';
import { loadConfig } from '../src/shared/config.js';
import { silentLogger } from '../src/shared/logger.js';
import { NornSystem } from '../src/system.js';
import { pipelines } from './pipelines.js';
import { checkPostgres, checkRedis, createBenchDatabase } from './services.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const N = Number(process.env.BENCH_DELIVERIES || 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY || 1);
const SECRET = 'bench-webhook-secret-0123456789';
const PAYLOAD = readFileSync(
  new URL('../test/fixtures/webhooks/github/push.default-branch.json', import.meta.url),
  'utf8',
);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Sends `N` requests made by `make`, CONCURRENCY at a time; the latency of each, sorted (ms). */
async function measure(make: () => { url: string; init: RequestInit }, expect: number) {
  const times: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next++ < N) {
      const { url, init } = make();
      const t0 = performance.now();
      const res = await fetch(url, init);
      await res.arrayBuffer();
      times.push(performance.now() - t0);
      if (res.status !== expect) throw new Error(`${url} answered ${res.status}, not ${expect}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return times.sort((a, b) => a - b);
}

async function main() {
  await checkRedis(REDIS_URL);
  await checkPostgres(DATABASE_URL);
  const bdb = await createBenchDatabase(
    DATABASE_URL,
    `norn_bench_${randomBytes(5).toString('hex')}`,
  );
  const system = new NornSystem(
    loadConfig({
      REDIS_URL,
      DATABASE_URL: bdb.url,
      NORN_QUEUE_PREFIX: `wb${randomBytes(4).toString('hex')}`,
      NORN_DEPLOY_PIPELINE: pipelines[0]!.name,
      NORN_MIGRATE_ON_START: 'false',
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
  try {
    const spec = {
      name: 'bench-app',
      repo: { url: 'https://github.com/Codertocat/Hello-World.git', autoDeploy: true },
      processes: { web: { port: 8080 } },
    };
    await system.apps.upsert(spec.name, spec, JSON.stringify(spec), 'json', SECRET);
    const signature = signFor('github', SECRET, PAYLOAD);
    const delivery = () => ({
      url: `${base}/webhooks/github`,
      init: {
        method: 'POST',
        body: PAYLOAD,
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-github-delivery': randomUUID(),
          'x-hub-signature-256': signature,
        },
      },
    });
    const baseline = () => ({ url: `${base}/baseline`, init: {} });
    await measure(baseline, 200); // warm both paths up before measuring either
    await measure(delivery, 202);
    const b = await measure(baseline, 200);
    const w = await measure(delivery, 202);
    const row = (name: string, t: number[]) =>
      `| ${name} | ${percentile(t, 50).toFixed(2)} | ${percentile(t, 99).toFixed(2)} |`;
    console.log(`${N} requests each, ${CONCURRENCY} at a time, one server\n`);
    console.log('| route | p50 ms | p99 ms |\n| --- | --- | --- |');
    console.log(row('GET /baseline (trivial Hono route)', b));
    console.log(row('POST /webhooks/github (verified push, recorded, deploy enqueued)', w));
    const ratio = (p: number) => (percentile(w, p) / percentile(b, p)).toFixed(1);
    console.log(`\nratio webhook / baseline: p50 ${ratio(50)}x, p99 ${ratio(99)}x`);
    console.log(
      'Absolute times depend on the machine; the ratio, measured in this run, is the result.',
    );
  } finally {
    server.close();
    await system.close();
    await bdb.drop();
  }
}

await main();
