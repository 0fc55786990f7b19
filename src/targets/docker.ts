/**
 * The docker target: an app's processes as containers on one Docker engine (host networking), its
 * scheduled processes as BullMQ job schedulers whose ticks run one-off containers. The mechanics
 * are in docker/ (runtime.ts: rollout; replica-check.ts and health.ts: health; schedules.ts).
 */
import { createCaddyDriver, type IngressProxy, type ProxyRoute } from '../shared/drivers/caddy.js';
import type { DockerDriver } from '../shared/drivers/docker.js';
import { NornError } from '../shared/errors.js';
import { durationMs, type Infraspec } from '../shared/spec/infraspec.js';
import { watch } from './docker/health.js';
import { cronContainerName } from './docker/names.js';
import { pruneRoutes, rollOut } from './docker/rolling.js';
import {
  DOCKER_HOST,
  LABELS,
  appReplicas,
  isScheduled,
  portOf,
  processCmd,
  processEnv,
  releaseReplicas,
  removeContainers,
  type RuntimeCall,
} from './docker/runtime.js';
import { routePrefix } from './docker/names.js';
import { syncSchedulers, type CronScheduler } from './docker/schedules.js';
import type { LiveUnit, Target, TargetCall, TargetRelease } from './types.js';

export interface DockerTargetDeps {
  /** The engine; undefined when this worker has none (every call then fails UNAVAILABLE). */
  docker: DockerDriver | undefined;
  cron: CronScheduler;
  /** How long health checks wait between looks (tests shorten it). */
  pollMs: number;
  /** The host's ingress proxy (default: Caddy's admin API at NORN_CADDY_ADMIN_URL's default). */
  proxy?: IngressProxy;
  /** How long a replica that left its route keeps serving in-flight requests (NORN_DRAIN_MS). */
  drainMs?: number;
  /** Where replica ports come from (NORN_DOCKER_REPLICA_PORTS). */
  replicaPorts?: { first: number; last: number };
}

export const DEFAULT_DRAIN_MS = 2_000;
export const DEFAULT_REPLICA_PORTS = { first: 61_000, last: 64_999 };

export function createDockerTarget(deps: DockerTargetDeps): Target {
  const engine = (): DockerDriver => {
    if (deps.docker) return deps.docker;
    throw new NornError(
      'UNAVAILABLE',
      'the docker target needs a Docker engine, and this worker has none configured (NORN_DOCKER_SOCKET)',
    );
  };
  const ingress = {
    proxy: deps.proxy ?? createCaddyDriver(),
    drainMs: deps.drainMs ?? DEFAULT_DRAIN_MS,
    replicaPorts: deps.replicaPorts ?? DEFAULT_REPLICA_PORTS,
  };
  const runtime = (call: TargetCall): RuntimeCall => ({
    ...call,
    docker: engine(),
    pollMs: deps.pollMs,
    ingress,
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
      const replicas = await releaseReplicas(engine(), app, spec, id);
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
      const rt = runtime(call);
      const failedOnes = (c: { labels: Record<string, string> }) =>
        c.labels[LABELS.release] === String(failed.id);
      // Out of the routes first; a route left with no replica goes.
      const gone = (await appReplicas(rt.docker, app)).filter(failedOnes);
      for (const id of await ingress.proxy.routeIds(routePrefix(app), call.signal)) {
        const route = await ingress.proxy.route(id, call.signal);
        if (!route) continue;
        const left = route.upstreams.filter((p) => !gone.some((c) => portOf(c) === p));
        if (left.length)
          await ingress.proxy.setRoute(id, { ...route, upstreams: left }, call.signal);
        else await ingress.proxy.removeRoute(id, call.signal);
      }
      await removeContainers(rt, app, failedOnes);
      await deps.cron.prune(app, []);
    },

    async address(app, process, spec) {
      return { host: DOCKER_HOST, port: processPort(app, process, spec) };
    },

    async remove(app, call) {
      const rt = runtime(call);
      const routes = await pruneRoutes(rt, app, new Set());
      const removed = await removeContainers(rt, app, () => true);
      const schedules = await deps.cron.prune(app, []);
      return [...removed, ...routes, ...schedules];
    },

    async live(app, signal) {
      const units = (await appReplicas(engine(), app)).map((c): LiveUnit => ({
        name: c.name,
        process: c.labels[LABELS.process] ?? '',
        replica: Number(c.labels[LABELS.replica]),
        releaseId: c.labels[LABELS.release] ? Number(c.labels[LABELS.release]) : undefined,
        image: c.image,
        running: c.state === 'running',
        port: portOf(c),
      }));
      // The app's routes by process, read in one call to the proxy's admin API.
      const prefix = routePrefix(app);
      const proxy: Record<string, ProxyRoute> = {};
      for (const [id, route] of Object.entries(await ingress.proxy.routes(signal)))
        if (id.startsWith(prefix)) proxy[id.slice(prefix.length)] = route;
      return { units, schedules: (await deps.cron.list?.(app)) ?? [], proxy };
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

/**
 * The port `process` is served on: the ingress proxy's route listens there (its replicas each
 * listen on a port of their own, the route's upstreams).
 */
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
