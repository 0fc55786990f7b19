/**
 * Runs the real deploy steps through the real engine for a test: a NornSystem whose services come
 * from createDeployServices (real git, dockerd and registry), plus read-outs of what a run left.
 */
import { onTestFinished } from 'vitest';
import type { PipelineDefinition } from '../../../src/queues/pipeline.js';
import type { CronScheduler } from '../../../src/pipelines/deploy/cron.js';
import { createDeployServices } from '../../../src/pipelines/deploy/services.js';
import type { DeployServices } from '../../../src/pipelines/deploy/types.js';
import { silentLogger } from '../../../src/shared/logger.js';
import type { NornSystem } from '../../../src/system.js';
import { testEnv, testSystem, waitForRun } from '../norn.js';

/** The steps under test use no schedulers; a call here means a step did what it should not. */
const noCron: CronScheduler = {
  upsert: () => Promise.reject(new Error('these deploy steps must not create schedulers')),
  prune: () => Promise.reject(new Error('these deploy steps must not prune schedulers')),
};

export async function startDeploySystem(
  databaseUrl: string,
  pipelines: PipelineDefinition<DeployServices>[],
  overrides: Record<string, string>,
): Promise<NornSystem<DeployServices>> {
  const system = testSystem<DeployServices>(
    testEnv(databaseUrl, overrides),
    pipelines,
    ({ config, db }) =>
      createDeployServices({ config, env: process.env, db, log: silentLogger, cron: noCron }),
  );
  await system.startWorker();
  return system;
}

export interface DeployResult {
  run: Awaited<ReturnType<typeof waitForRun>>;
  sagaId: string;
}

/** Registers `appId` with `spec` (its name set to the app) and requests a deploy of `ref`. */
export async function requestDeploy(
  system: NornSystem<DeployServices>,
  appId: string,
  spec: Record<string, unknown>,
  ref: string | undefined,
  pipeline = 'deploy',
) {
  const full = { name: appId, processes: { web: { port: 8080 } }, ...spec };
  await system.apps.upsert(appId, full, JSON.stringify(full), 'json');
  return system.runs.request({
    appId,
    pipeline,
    params: ref === undefined ? {} : { ref },
    spec: full,
  });
}

/** requestDeploy, then waits for the run to end. */
export async function deploy(...args: Parameters<typeof requestDeploy>): Promise<DeployResult> {
  const accepted = await requestDeploy(...args);
  const run = await waitForRun(args[0] as NornSystem, accepted.deploymentId, undefined, 60_000);
  return { run, sagaId: accepted.sagaId };
}

/** The lines a step wrote to its job log (what Bull Board shows). */
export async function jobLogs(
  system: NornSystem<DeployServices>,
  runId: string,
  step: string,
): Promise<string[]> {
  return (await system.runs.queue('steps').getJobLogs(`${runId}.${step}`)).logs;
}

/** Tags of `app` in a registry, asked over its HTTP API (not through norn's driver). */
export async function registryTags(
  host: string,
  app: string,
  creds?: { username: string; password: string },
): Promise<string[]> {
  const headers: Record<string, string> = creds
    ? {
        authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`,
      }
    : {};
  const res = await fetch(`http://${host}/v2/${app}/tags/list`, { headers });
  if (res.status === 404) return [];
  if (!res.ok) throw new Error(`registry ${host} answered ${res.status} for ${app}`);
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

/** Closes the system when the current test ends. */
export function closeAfterTest(system: NornSystem<DeployServices>): void {
  onTestFinished(() => system.close());
}
