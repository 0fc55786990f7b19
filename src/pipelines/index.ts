/**
 * The pipelines norn ships and the services their steps use. Workers and api processes register
 * the same definitions (the api needs them to know a pipeline's steps and version).
 */
import { existsSync } from 'node:fs';
import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import { closeQuietly } from '../shared/connection-errors.js';
import { createRedis } from '../shared/redis.js';
import type { PipelineDefinition } from '../queues/pipeline.js';
import type { ExtraQueue } from '../workers/fleet.js';
import { CRON_QUEUE, createCronProcessor, createCronScheduler } from './deploy/cron.js';
import { LABELS } from '../targets/docker/runtime.js';
import { deployPipeline } from './deploy/index.js';
import { forgePipeline, teardownPipeline } from './forge/index.js';
import { driftCheckPipeline, releasePipeline, reviewPipeline } from './gitops/index.js';
import { ReleaseStore } from './deploy/releases.js';
import { createDeployServices } from './deploy/services.js';
import type { DeployServices } from './deploy/types.js';
import { restorePipeline } from './restore.js';

export function builtinPipelines(): PipelineDefinition<DeployServices>[] {
  return [
    deployPipeline,
    restorePipeline,
    forgePipeline,
    teardownPipeline,
    reviewPipeline,
    releasePipeline,
    driftCheckPipeline,
  ];
}

export interface StepServicesHandle {
  services: DeployServices;
  extraQueues: ExtraQueue[];
  /**
   * Names of the app's containers on the docker target's engine (by the `norn.app` label), or
   * undefined when there is no engine socket here (DELETE /api/apps/:id asks before it deletes).
   */
  appContainers(appId: string): Promise<string[] | undefined>;
  close(): Promise<void>;
}

/** Builds the deploy services and the scheduled-process queue, on the system's own database. */
export function createStepServices(
  config: Config,
  env: Record<string, string | undefined>,
  db: Db,
  log: Logger,
): StepServicesHandle {
  const connection = createRedis(config.redisUrl, 'worker', log, 'cron');
  const cron = createCronScheduler({
    connection,
    prefix: config.queuePrefix,
    releases: new ReleaseStore(db),
  });
  const services = createDeployServices({ config, env, db, log, cron });
  return {
    services,
    extraQueues: [{ name: CRON_QUEUE, processor: createCronProcessor({ ...services, log }) }],
    appContainers: async (appId) => {
      if (!services.docker || !existsSync(config.deploy.dockerSocket)) return undefined;
      return (await services.docker.list({ [LABELS.app]: appId })).map((c) => c.name);
    },
    close: async () => {
      await cron.close();
      await closeQuietly(() => connection.quit(), 'redis:cron', log);
    },
  };
}
