/**
 * `npm run bench:deploys`: 100 app deploys requested at once on the Docker target (each app its
 * own: the example app, one replica, its own port), with 1 and then 2 worker processes, against
 * the slowest of a few single deploys measured alone in the same run. A deploy is the whole real
 * pipeline: clone, docker build, test in the image, push to the registry, rolling start behind the
 * ingress proxy, health, cloudflared route, cleanup. Prints the wall time, the ratio (target:
 * ≤ 1.5× the slowest alone), and where the time went: each step's total and mean time, and how
 * long runs waited for a worker.
 *
 * Needs what the tests need: script/docker-up (Docker, registry, Caddy), Redis, PostgreSQL.
 * Env: REDIS_URL, DATABASE_URL, BENCH_DEPLOY_APPS (100), BENCH_DEPLOY_ALONE (3),
 * BENCH_DEPLOY_CONCURRENCY (per worker process, default 16).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { parse as parseYaml } from 'yaml';
import { createCaddyDriver } from '../src/shared/drivers/caddy.js';
import { routePrefix } from '../src/targets/docker/names.js';
import { loadConfig } from '../src/shared/config.js';
import { silentLogger } from '../src/shared/logger.js';
import { createRedis } from '../src/shared/redis.js';
import { NornSystem } from '../src/system.js';
import { builtinPipelines } from '../src/pipelines/index.js';
import {
  checkPostgres,
  checkRedis,
  createBenchDatabase,
  removeKeys,
  withDatabase,
} from './services.js';
import { nodeArgv, ROOT, WorkerPool } from './workers.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const APPS = Number(process.env.BENCH_DEPLOY_APPS || 100);
const ALONE = Number(process.env.BENCH_DEPLOY_ALONE || 3);
const CONCURRENCY = Number(process.env.BENCH_DEPLOY_CONCURRENCY || 16);
const TOKEN = randomBytes(24).toString('base64url');

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  await checkRedis(REDIS_URL);
  await checkPostgres(DATABASE_URL);
  execFileSync('bash', [join(ROOT, 'script/docker-up'), '--auth'], { stdio: 'ignore' });
  const work = mkdtempSync(join(tmpdir(), 'norn-bench-deploys-'));
  const repoUrl = execFileSync('bash', [join(ROOT, 'script/example-repo'), join(work, 'hello')], {
    encoding: 'utf8',
  }).trim();
  writeFileSync(join(work, 'cloudflared.yml'), 'ingress:\n  - service: http_status:404\n');
  const prefix = `dfb${randomBytes(4).toString('hex')}`;
  const bdb = await createBenchDatabase(
    DATABASE_URL,
    `norn_bench_${randomBytes(5).toString('hex')}`,
  );
  const env = {
    REDIS_URL,
    DATABASE_URL: bdb.url,
    NORN_QUEUE_PREFIX: prefix,
    NORN_API_TOKEN: TOKEN,
    NORN_DEPLOY_PIPELINE: 'deploy',
    NORN_WORK_DIR: join(work, 'runs'),
    NORN_SNAPSHOT_DIR: join(work, 'snapshots'),
    NORN_APP_DATABASE_URL: withDatabase(DATABASE_URL, 'postgres'),
    NORN_CLOUDFLARED_CONFIG: join(work, 'cloudflared.yml'),
    NORN_CLOUDFLARED_RESTART: JSON.stringify(['true']),
    NORN_HEALTH_POLL_MS: '200',
    NORN_DRAIN_MS: '300',
    NORN_WORKER_CONCURRENCY: String(CONCURRENCY),
    NORN_MIGRATE_ON_START: 'false',
    LOG_LEVEL: 'silent',
  };
  const system = new NornSystem(loadConfig(env), {
    pipelines: builtinPipelines(),
    services: undefined,
    log: silentLogger,
  });
  const api = await system.startApi(0);
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(api.url + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 300)
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const example = parseYaml(readFileSync(join(ROOT, 'examples/hello/infraspec.yaml'), 'utf8'));
  delete example.infrastructure;
  delete example.migrations;
  const apps: string[] = [];
  const usedPorts = new Set<number>();
  const register = async (name: string) => {
    const spec = structuredClone(example);
    spec.name = name;
    spec.repo.url = repoUrl;
    let port = await freePort();
    while (usedPorts.has(port)) port = await freePort(); // a cleaned-up app still claims its port
    usedPorts.add(port);
    spec.processes.web.port = port;
    spec.processes.web.replicas = 1;
    spec.endpoints = [{ url: `${name}.example.test` }];
    spec.deployPolicy.minHealthyTime = '1s';
    await call('POST', '/api/apps', spec);
    apps.push(name);
  };
  /** Deploys `names` at once; the wall time until the last ends, and their run ids. */
  const deployAll = async (names: string[]) => {
    const t0 = performance.now();
    const ids = await Promise.all(
      names.map(async (n) =>
        String((await call('POST', `/api/apps/${n}/deploy`, { ref: 'main' })).runId),
      ),
    );
    for (;;) {
      const { rows } = await system.db.query<{ status: string; error: string | null }>(
        'SELECT status, error FROM runs WHERE id = ANY($1)',
        [ids],
      );
      if (rows.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))) {
        const failed = rows.filter((r) => r.status !== 'succeeded');
        if (failed.length) throw new Error(`${failed.length} deploys failed: ${failed[0]!.error}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return { ms: performance.now() - t0, ids };
  };
  /** Where the time went: each step's mean, and how long runs waited before their first step. */
  const breakdown = async (ids: string[]) => {
    const { rows } = await system.db.query<{ name: string; mean: number; total: number }>(
      `SELECT name, avg(extract(epoch FROM finished_at - started_at) * 1000)::float AS mean,
              sum(extract(epoch FROM finished_at - started_at) * 1000)::float AS total
         FROM run_steps WHERE run_id = ANY($1) AND finished_at IS NOT NULL
        GROUP BY name, idx ORDER BY idx`,
      [ids],
    );
    const { rows: waits } = await system.db.query<{ mean: number; max: number }>(
      `SELECT avg(extract(epoch FROM s.started_at - r.created_at) * 1000)::float AS mean,
              max(extract(epoch FROM s.started_at - r.created_at) * 1000)::float AS max
         FROM runs r JOIN run_steps s ON s.run_id = r.id AND s.idx = 0 WHERE r.id = ANY($1)`,
      [ids],
    );
    return { steps: rows, wait: waits[0]! };
  };
  const pool = new WorkerPool('deploys');
  const startWorkers = (n: number) =>
    pool.start(
      n,
      nodeArgv('src/main.ts', 'worker'),
      { ...env, LOG_LEVEL: 'warn' },
      system.runs.queue('steps'),
      60_000,
    );
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const cleanup = async () => {
    const docker = new Docker();
    const proxy = createCaddyDriver();
    for (const app of apps.splice(0)) {
      for (const id of await proxy.routeIds(routePrefix(app)).catch(() => []))
        await proxy.removeRoute(id).catch(() => {});
      for (const c of await docker.listContainers({
        all: true,
        filters: { label: [`norn.app=${app}`] },
      }))
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {});
    }
  };
  try {
    await startWorkers(1);
    // Warm-up: the build cache and the registry have the example's layers, as they would.
    await register('df-warm');
    await deployAll(['df-warm']);
    const alone: number[] = [];
    for (let i = 0; i < ALONE; i++) {
      const name = `df-alone-${i}`;
      await register(name);
      alone.push((await deployAll([name])).ms);
    }
    const slowest = Math.max(...alone);
    await cleanup();
    const rows: string[] = [];
    const details: string[] = [];
    for (const workers of [1, 2]) {
      if (workers === 2) await startWorkers(1); // a second process beside the first
      const names = Array.from({ length: APPS }, (_, i) => `df-${workers}w-${i}`);
      for (const n of names) await register(n);
      const { ms, ids } = await deployAll(names);
      rows.push(
        `| ${workers} × ${CONCURRENCY} | ${APPS} | ${s(ms)} | ${(ms / slowest).toFixed(1)}x | ${(ms / APPS / 1000).toFixed(2)} s |`,
      );
      const b = await breakdown(ids);
      details.push(
        `${workers} worker process(es): a run waited ${s(b.wait.mean)} on average (${s(b.wait.max)} at most) for its first step; steps (mean, total): ` +
          b.steps.map((r) => `${r.name} ${s(r.mean)} / ${s(r.total)}`).join(', '),
      );
      await cleanup();
    }
    console.log(
      `${APPS} deploys of the example app at once on Docker (1 replica each), this machine\n`,
    );
    console.log(
      `alone (${ALONE} deploys, one at a time): ${alone.map(s).join(', ')}; slowest ${s(slowest)}\n`,
    );
    console.log('| workers × concurrency | deploys | wall | vs slowest alone | wall per deploy |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(r);
    console.log(`\ntarget: ≤ 1.5x the slowest alone\n`);
    for (const d of details) console.log(`- ${d}`);
  } finally {
    await pool.stop();
    await cleanup();
    await system.close();
    const r = createRedis(REDIS_URL, 'client', silentLogger);
    await removeKeys(r, prefix);
    await r.quit();
    await bdb.drop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
