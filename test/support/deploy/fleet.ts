/**
 * A fleet that deploys the example app for real, in-process: its own database, an api and a
 * worker running the built-in pipelines with the real step services (git, the Docker engine and
 * registry), and the example repository as a git repo of its own. What the target tests of the
 * deploy pipeline (kubernetes, nomad) start with.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinPipelines, createStepServices } from '../../../src/pipelines/index.js';
import type { DeployServices } from '../../../src/pipelines/deploy/types.js';
import { silentLogger, type Logger } from '../../../src/shared/logger.js';
import type { NornSystem, RunningApi } from '../../../src/system.js';
import { createTestDatabase } from '../db.js';
import { dockerUp, REPO_ROOT } from '../docker/engine.js';
import { testEnv, testSystem } from '../norn.js';

export interface Fleet {
  system: NornSystem<DeployServices>;
  services: DeployServices;
  api: RunningApi;
  /** The example app's repository (file:// URL). */
  repoUrl: string;
  /** A directory of the fleet's own (runs, config files). */
  work: string;
  close(): Promise<void>;
}

/**
 * Starts the fleet with `env` over the test defaults (NORN_API_TOKEN = `token`); the step
 * services also read `stepEnv` (KUBECONFIG, HOME …) as a worker reads its environment.
 */
export async function startFleet(o: {
  token: string;
  name: string;
  env?: (work: string) => Record<string, string>;
  stepEnv?: Record<string, string>;
  /** Where the fleet logs (default: nowhere). */
  log?: Logger;
}): Promise<Fleet> {
  await dockerUp();
  const tdb = await createTestDatabase();
  const work = mkdtempSync(join(tmpdir(), `norn-${o.name}-`));
  const repoUrl = execFileSync(
    'bash',
    [join(REPO_ROOT, 'script/example-repo'), join(work, 'hello')],
    { encoding: 'utf8' },
  ).trim();
  const env = testEnv(tdb.url, {
    NORN_API_TOKEN: o.token,
    NORN_DEPLOY_PIPELINE: 'deploy',
    NORN_WORK_DIR: join(work, 'runs'),
    NORN_HOOK_POLL_MS: '50',
    ...o.env?.(work),
  });
  const system = testSystem<DeployServices>(env, builtinPipelines(), undefined, o.log);
  const step = createStepServices(
    system.config,
    { ...process.env, HOME: '/nonexistent', ...o.stepEnv },
    system.stepDb,
    o.log ?? silentLogger,
  );
  system.setServices(step.services, step.extraQueues);
  await system.startWorker();
  const api = await system.startApi(0);
  return {
    system,
    services: step.services,
    api,
    repoUrl,
    work,
    async close() {
      await system.close();
      await step.close();
      await tdb.drop();
    },
  };
}
