/**
 * The docker target: an app's processes as containers on one Docker engine (host networking), its
 * scheduled processes as BullMQ job schedulers whose ticks run one-off containers. The mechanics
 * are in docker/ (runtime.ts: rollout; replica-check.ts and health.ts: health; schedules.ts).
 */
import type { DockerDriver } from '../shared/drivers/docker.js';
import { NornError } from '../shared/errors.js';
import { durationMs, type Infraspec } from '../shared/spec/infraspec.js';
import { watch } from './docker/health.js';
import { cronContainerName } from './docker/names.js';
import {
  DOCKER_HOST,
  LABELS,
  appReplicas,
  isScheduled,
  processCmd,
  processEnv,
  removeContainers,
  replicasOf,
  rollOut,
  type RuntimeCall,
} from './docker/runtime.js';
import { syncSchedulers, type CronScheduler } from './docker/schedules.js';
import type { LiveUnit, Target, TargetCall, TargetRelease } from './types.js';

export interface DockerTargetDeps {
  /** The engine; undefined when this worker has none (every call then fails UNAVAILABLE). */
  docker: DockerDriver | undefined;
  cron: CronScheduler;
  /** How long health checks wait between looks (tests shorten it). */
  pollMs: number;
}

export function createDockerTarget(deps: DockerTargetDeps): Target {
  const engine = (): DockerDriver => {
    if (deps.docker) return deps.docker;
    throw new NornError(
      'UNAVAILABLE',
      'the docker target needs a Docker engine, and this worker has none configured (NORN_DOCKER_SOCKET)',
    );
  };
  const runtime = (call: TargetCall): RuntimeCall => ({
    ...call,
    docker: engine(),
    pollMs: deps.pollMs,
  });

  /** Rollout, then schedules: together they are the release on this target. */
  async function put(release: TargetRelease, call: TargetCall, onTouch?: () => void) {
    const units = await rollOut(runtime(call), { release, onTouch });
    const schedules = await syncSchedulers(deps.cron, release.app, release.spec, release.id);
    return { units, schedules };
  }

  return {
    name: 'docker',
    apply: (release, call) => put(release, call, call.onTouch),

    async waitHealthy({ app, id, spec }, call) {
      const replicas = replicasOf(app, spec);
      if (replicas.length === 0) return { ok: true, healthyForMs: 0 };
      return watch(runtime(call), {
        replicas,
        // Every container of the release was created by its own rollout: any restart is a crash.
        expect: { releaseId: id, restarts: 0 },
        minMs: durationMs(spec.deployPolicy.minHealthyTime),
        timeoutMs: durationMs(spec.deployPolicy.healthTimeout),
        onProgress: call.onProgress,
      });
    },

    async rollBack({ app, failed, previous }, call) {
      if (previous) {
        await put(previous, call);
        return;
      }
      await removeContainers(
        runtime(call),
        app,
        (c) => c.labels[LABELS.release] === String(failed.id),
      );
      await deps.cron.prune(app, []);
    },

    async address(app, process, spec) {
      return { host: DOCKER_HOST, port: processPort(app, process, spec) };
    },

    async remove(app, call) {
      const removed = await removeContainers(runtime(call), app, () => true);
      const schedules = await deps.cron.prune(app, []);
      return [...removed, ...schedules];
    },

    async live(app) {
      const units = (await appReplicas(engine(), app)).map((c): LiveUnit => ({
        name: c.name,
        process: c.labels[LABELS.process] ?? '',
        replica: Number(c.labels[LABELS.replica]),
        releaseId: c.labels[LABELS.release] ? Number(c.labels[LABELS.release]) : undefined,
        image: c.image,
        running: c.state === 'running',
      }));
      return { units, schedules: (await deps.cron.list?.(app)) ?? [] };
    },

    async runScheduled({ release, process, runId, signal, timeoutMs, onLine }) {
      const p = release.spec.processes[process];
      if (!p || !isScheduled(p))
        throw new NornError(
          'NOT_FOUND',
          `release ${release.id} of ${release.app} has no scheduled process ${process}`,
        );
      return engine().runToCompletion({
        name: cronContainerName(release.app, process, runId),
        image: release.imageRef,
        cmd: processCmd(p) ?? [], // [] keeps the image's CMD
        env: processEnv(release.spec, process, release.secrets),
        labels: {
          [LABELS.app]: release.app,
          [LABELS.process]: process,
          [LABELS.release]: String(release.id),
          'norn.cron': '1',
        },
        signal,
        timeoutMs,
        redact: Object.values(release.secrets),
        onLine,
      });
    },
  };
}

/** The port `process` serves on (replica 0's; replica i listens on port + i). */
function processPort(app: string, process: string, spec: Infraspec): number {
  const p = spec.processes[process];
  if (!p) throw new NornError('NOT_FOUND', `app ${app} has no process ${process}`);
  if (p.port === undefined || p.replicas < 1)
    throw new NornError(
      'SPEC_INVALID',
      `process ${process} of app ${app} has no port (and replicas) to be reached on`,
    );
  return p.port;
}
