/**
 * norn in-process for the deploy runtime tests: the engine with the runtime pipeline, the real
 * deploy services (docker, registry, SOPS keys, releases), the cron scheduler and a BullMQ worker
 * running the cron processor on the test's queue prefix, as the worker fleet would.
 */
import { Worker } from 'bullmq';
import { silentLogger } from '../../../src/shared/logger.js';
import { createRedis, type Redis } from '../../../src/shared/redis.js';
import type { RunRecord, StepRecord } from '../../../src/shared/store/runs.js';
import {
  CRON_QUEUE,
  createCronProcessor,
  createCronScheduler,
  type CronJobData,
  type CronJobResult,
  type CronSchedulerHandle,
} from '../../../src/pipelines/deploy/cron.js';
import { ReleaseStore } from '../../../src/pipelines/deploy/releases.js';
import { createDeployServices } from '../../../src/pipelines/deploy/services.js';
import type { DeployServices } from '../../../src/pipelines/deploy/types.js';
import { registerApp, testEnv, testSystem, waitForRun } from '../norn.js';
import { runtimePipeline, type FakeSource } from './fixtures.js';

export interface RuntimeOptions {
  databaseUrl: string;
  workDir: string;
  cloudflaredConfig: string;
  restartArgv: string[];
  pgpKeyFile: string;
}

export interface DeployResult {
  run: RunRecord;
  steps: Record<string, StepRecord>;
  outputs: Record<string, unknown>;
}

export async function startRuntime(o: RuntimeOptions) {
  const env = testEnv(o.databaseUrl, {
    NORN_WORK_DIR: o.workDir,
    NORN_REGISTRY_URL: '127.0.0.1:5000',
    NORN_HEALTH_POLL_MS: '100',
    NORN_CLOUDFLARED_CONFIG: o.cloudflaredConfig,
    NORN_CLOUDFLARED_RESTART: JSON.stringify(o.restartArgv),
  });
  const redis: Redis[] = [];
  let cron!: CronSchedulerHandle;
  let services!: DeployServices;
  const system = testSystem<DeployServices>(env, [runtimePipeline], ({ config, db }) => {
    redis.push(createRedis(config.redisUrl, 'worker', silentLogger));
    cron = createCronScheduler({
      connection: redis[0]!,
      prefix: config.queuePrefix,
      releases: new ReleaseStore(db),
    });
    const keysEnv = { ...process.env, NORN_SOPS_PGP_KEY_FILE: o.pgpKeyFile };
    services = createDeployServices({ config, env: keysEnv, db, log: silentLogger, cron });
    return services;
  });
  await system.startWorker();
  // How the worker fleet runs scheduled processes: one Worker on the `cron` queue, same prefix.
  redis.push(createRedis(system.config.redisUrl, 'worker', silentLogger));
  const cronWorker = new Worker<CronJobData, CronJobResult>(
    CRON_QUEUE,
    createCronProcessor(services),
    {
      connection: redis[1]!,
      prefix: system.config.queuePrefix,
      concurrency: 2,
    },
  );
  cronWorker.on('error', () => {});
  await cronWorker.waitUntilReady();

  /** Registers `app` with `spec` and requests its deploy; answers at once. */
  async function start(app: string, spec: Record<string, unknown>, source: FakeSource) {
    await registerApp(system, app, spec);
    return system.runs.request({
      appId: app,
      pipeline: 'deploy',
      params: { fake: source },
      spec: { name: app, ...spec },
    });
  }

  async function result(id: string, timeoutMs = 60_000): Promise<DeployResult> {
    const run = await waitForRun(system, id, undefined, timeoutMs);
    const steps = Object.fromEntries((await system.store.steps(run.id)).map((s) => [s.name, s]));
    return { run, steps, outputs: await system.store.outputs(run.id) };
  }

  async function deploy(
    app: string,
    spec: Record<string, unknown>,
    source: FakeSource,
    timeoutMs = 60_000,
  ): Promise<DeployResult> {
    return result((await start(app, spec, source)).deploymentId, timeoutMs);
  }

  return {
    system,
    services,
    cron,
    cronWorker,
    start,
    result,
    deploy,
    releases: new ReleaseStore(system.db),
    async close() {
      await cronWorker.close();
      await cron.queue.obliterate({ force: true }).catch(() => {});
      await cron.close();
      await system.close();
      for (const r of redis) await r.quit().catch(() => {});
    },
  };
}
export type Runtime = Awaited<ReturnType<typeof startRuntime>>;
