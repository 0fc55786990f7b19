/**
 * Entry point: `main.ts all | api | worker | migrate`. The only file that reads process.env,
 * installs signal handlers and exits.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { loadConfig, type Config } from './shared/config.js';
import { isNornError } from './shared/errors.js';
import { createLogger } from './shared/logger.js';
import type { PipelineDefinition } from './queues/pipeline.js';
import { NornSystem } from './system.js';
import { builtinPipelines, createStepServices } from './pipelines/index.js';

const COMMANDS = ['all', 'api', 'worker', 'migrate'] as const;
type Command = (typeof COMMANDS)[number];

async function loadPipelines(config: Config): Promise<PipelineDefinition<unknown>[]> {
  const defs: PipelineDefinition<unknown>[] = [...builtinPipelines()];
  if (config.pipelinesModule) {
    const mod = await import(pathToFileURL(resolve(config.pipelinesModule)).href);
    if (!Array.isArray(mod.pipelines))
      throw new Error(
        `${config.pipelinesModule} must export "pipelines" (an array of pipeline definitions)`,
      );
    defs.push(...mod.pipelines);
  }
  return defs;
}

async function main(command: Command) {
  const config = loadConfig(process.env);
  const log = createLogger(config.logLevel, `norn-${command}`, config.logFormat);
  // A promise nobody awaited (a bug) must not take the api or a worker down with every request
  // and step it serves: Node would exit; log it instead. Handlers answer their own errors.
  process.on('unhandledRejection', (err) =>
    log.error({ err }, 'unhandled promise rejection (a bug); the process keeps serving'),
  );
  const system = new NornSystem<unknown>(config, {
    pipelines: await loadPipelines(config),
    services: undefined,
    log,
  });
  if (command === 'migrate' || config.migrateOnStart) await system.migrate();
  if (command === 'migrate') return system.close();
  const step = createStepServices(config, process.env, system.stepDb, log);
  system.setServices(step.services, step.extraQueues, step.appContainers);
  system.onClose(() => step.close());

  if (command === 'api' || command === 'all') await system.startApi();
  if (command === 'worker' || command === 'all') await system.startWorker();

  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      log.info({ sig }, 'shutting down');
      system.close().then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

const command = (process.argv[2] ?? 'all') as Command;
if (!COMMANDS.includes(command)) {
  console.error(`usage: norn-server ${COMMANDS.join('|')}`);
  process.exit(2);
}
main(command).catch((err) => {
  // Start-up failures are mostly unreachable services: say which, without credentials or a stack.
  const e = err as Error & { code?: string };
  const hint =
    e.code === '3D000'
      ? ' (create it, or run script/services, which does)'
      : e.code === 'ECONNREFUSED'
        ? ' (is the service running? script/services starts Redis and PostgreSQL)'
        : '';
  console.error(
    `norn ${command}: ${isNornError(err) ? err.message : `${e.message ?? String(err)}${hint}`}`,
  );
  process.exit(1);
});
