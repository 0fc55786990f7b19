/** Runs norn in-process for a test: its own database (per file), queue prefix and pub/sub channels. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, inject } from 'vitest';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { silentLogger, type Logger } from '../../src/shared/logger.js';
import type { PipelineDefinition } from '../../src/queues/pipeline.js';
import type { RunStatus } from '../../src/shared/store/runs.js';
import { NornSystem, type RunningApi } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { pipelines as testPipelines } from './pipelines.js';

/** Test timings: stalls detected in ~3 s, leases expire after 4 s, sweeps every 0.5 s. */
export function testEnv(
  databaseUrl: string,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: inject('redisUrl'),
    DATABASE_URL: databaseUrl,
    NORN_QUEUE_PREFIX: `t${randomBytes(5).toString('hex')}`,
    NORN_LOCK_DURATION_MS: '2000',
    NORN_STALLED_INTERVAL_MS: '1000',
    NORN_LEASE_TTL_MS: '4000',
    NORN_LEASE_HEARTBEAT_MS: '500',
    NORN_SWEEP_INTERVAL_MS: '500',
    NORN_CANCEL_GRACE_MS: '2000',
    NORN_WS_HEARTBEAT_MS: '500',
    NORN_MIGRATE_ON_START: 'false',
    // Replaced replicas drain for this long after leaving their route (the default is 2 s).
    NORN_DRAIN_MS: '300',
    NORN_WORKER_CONCURRENCY: '4',
    NORN_SHUTDOWN_GRACE_MS: '3000',
    LOG_LEVEL: 'silent',
    PORT: '0',
    NORN_DEPLOY_PIPELINE: 'chain',
    ...overrides,
  };
}

export function testSystem<S = unknown>(
  env: Record<string, string>,
  pipelines: PipelineDefinition<S>[] = testPipelines as PipelineDefinition<S>[],
  services?: (system: { config: Config; db: import('../../src/shared/db.js').Db }) => S,
  log: Logger = silentLogger,
) {
  const config: Config = loadConfig(env);
  const system = new NornSystem<S>(config, {
    pipelines,
    services: undefined as S,
    log,
  });
  if (services) system.setServices(services({ config, db: system.stepDb }));
  return system;
}

export interface ApiSystem {
  tdb: TestDatabase;
  system: NornSystem;
  /** The Hono api in-process (`app.request`). */
  app: ReturnType<NornSystem['createApi']>;
}

/** For a test file: its own database, norn in-process with a worker, and the api, closed after. */
export function useApiSystem(overrides: Record<string, string>): ApiSystem {
  const ctx = {} as ApiSystem;
  beforeAll(async () => {
    ctx.tdb = await createTestDatabase();
    ctx.system = testSystem(testEnv(ctx.tdb.url, overrides));
    await ctx.system.startWorker();
    ctx.app = ctx.system.createApi();
  });
  afterAll(async () => {
    await ctx.system.close();
    await ctx.tdb.drop();
  });
  return ctx;
}

export interface RunningApiSystem {
  tdb: TestDatabase;
  system: NornSystem;
  /** The api listening on loopback (HTTP and /ws). */
  api: RunningApi;
}

/** For a test file: its own database, a worker, and the api serving on a port, closed after. */
export function useRunningApi(overrides: Record<string, string>): RunningApiSystem {
  const ctx = {} as RunningApiSystem;
  beforeAll(async () => {
    ctx.tdb = await createTestDatabase();
    ctx.system = testSystem(testEnv(ctx.tdb.url, overrides));
    await ctx.system.startWorker();
    ctx.api = await ctx.system.startApi(0);
  });
  afterAll(async () => {
    await ctx.system?.close();
    await ctx.tdb?.drop();
  });
  return ctx;
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const TERMINAL: RunStatus[] = ['succeeded', 'failed', 'cancelled'];

export function waitForRun(
  system: NornSystem,
  id: string,
  statuses: RunStatus[] = TERMINAL,
  timeoutMs = 20_000,
) {
  return waitFor(
    async () => {
      const run = await system.store.getRun(id);
      return run && statuses.includes(run.status) ? run : undefined;
    },
    `run ${id} to be ${statuses.join('|')}`,
    timeoutMs,
  );
}

export async function registerApp(
  system: NornSystem,
  name: string,
  extra: Record<string, unknown> = {},
) {
  const spec = { name, processes: { web: { port: 8080 } }, ...extra };
  await system.apps.upsert(name, spec, JSON.stringify(spec), 'json');
}

/**
 * A JSON client for a running api: `call(method, path, body?)` answers `{status, body}` (the body
 * parsed), with the bearer token on every request.
 */
export function apiCaller(api: () => { url: string }, token: string) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(api().url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read what they expect
    return { status: res.status, body: (await res.json()) as any };
  };
}
