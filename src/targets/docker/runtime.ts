/**
 * The docker target's release mechanics: how a release's processes become containers (names,
 * labels, env), and rolling a release out one replica at a time. Looking at a replica is
 * replica-check.ts; watching a release become healthy is health.ts.
 *
 * Containers are `norn.<app>.<process>.<replica>` (names.ts); a process with port P runs replica i
 * on P+i (host networking: replicas cannot share a port). `docker.run` is idempotent by name, so
 * rolling a release out again (a re-run step, a rollback) keeps containers that are already right;
 * it never replaces another app's container, and never starts one on a port in use.
 */
import {
  PORT_LABEL,
  type ContainerSummary,
  type DockerDriver,
  type RunOptions,
} from '../../shared/drivers/docker.js';
import { scrubbed } from '../../shared/scrub.js';
import {
  durationMs,
  replicaPort,
  type Infraspec,
  type InfraspecProcess,
} from '../../shared/spec/infraspec.js';
import type { TargetRelease } from '../types.js';
import { replicaName } from './names.js';
import { waitForReplica, type Replica } from './replica-check.js';

export const LABELS = {
  app: 'norn.app',
  process: 'norn.process',
  replica: 'norn.replica',
  deployment: 'norn.deployment',
  release: 'norn.release',
} as const;

/**
 * Where the docker target's processes listen: containers run on the host network, and the worker
 * runs on that host, so a process's port on the loopback is where routes and probes reach it.
 */
export const DOCKER_HOST = '127.0.0.1';

/** What the runtime functions need besides the release itself. */
export interface RuntimeCall {
  docker: DockerDriver;
  signal: AbortSignal;
  log: (line: string) => void;
  pollMs: number;
  /** Secret values to scrub from anything that leaves (messages, log lines). */
  redact: string[];
}

export const isScheduled = (p: InfraspecProcess) => typeof p.schedule === 'string';

/** Every replica of the release's long-running processes, in rollout order. */
export function replicasOf(app: string, spec: Infraspec): Replica[] {
  const out: Replica[] = [];
  for (const [process, p] of Object.entries(spec.processes)) {
    if (isScheduled(p)) continue;
    for (let index = 0; index < p.replicas; index++) {
      const port = replicaPort(p, index);
      const probeTimeoutMs = p.health ? durationMs(p.health.timeout) : 5_000;
      out.push({
        process,
        index,
        name: replicaName(app, process, index),
        port,
        healthUrl:
          port !== undefined && p.health
            ? `http://${DOCKER_HOST}:${port}${p.health.path}`
            : undefined,
        probeTimeoutMs,
      });
    }
  }
  return out;
}

/** spec env, then the process's env, then secrets, then PORT (later wins). */
export function processEnv(
  spec: Infraspec,
  process: string,
  secrets: Record<string, string>,
  port?: number,
): Record<string, string> {
  const env = { ...spec.env, ...spec.processes[process]?.env, ...secrets };
  return port === undefined ? env : { ...env, PORT: String(port) };
}

/** `/bin/sh -c <command>`, or undefined for the image's own CMD. */
export const processCmd = (p: InfraspecProcess | undefined) =>
  p?.command ? ['/bin/sh', '-c', p.command] : undefined;

export interface RollOut {
  release: Pick<TargetRelease, 'app' | 'id' | 'deploymentId' | 'imageRef' | 'spec' | 'secrets'>;
  /** Called just before the first container is changed. */
  onTouch?: () => void;
}

/**
 * Starts the release's containers replica by replica, each replacing the container that held its
 * slot (same process and replica) in the release before; a replica with a health path must answer
 * before the next one is replaced, and one that exits fails the rollout at once. Then removes the
 * app's containers the release does not have (scaled down, process removed).
 */
export async function rollOut(call: RuntimeCall, o: RollOut): Promise<string[]> {
  const { app, spec } = o.release;
  const timeoutMs = durationMs(spec.deployPolicy.healthTimeout);
  const replicas = replicasOf(app, spec);
  const before = await call.docker.list({ [LABELS.app]: app });
  for (const r of replicas) {
    o.onTouch?.();
    await clearSlot(call, before, r);
    call.log(`starting ${r.name} (${o.release.imageRef})`);
    const started = await call.docker.run(replicaOptions(call, o, r)).catch((err: unknown) => {
      throw scrubbed(err, call.redact);
    });
    const expect = { releaseId: o.release.id, restarts: started.restartCount };
    await waitForReplica(call, r, expect, timeoutMs);
    call.log(r.healthUrl ? `${r.name} answers ${r.healthUrl}` : `${r.name} is running`);
  }
  await removeContainers(call, app, (c) => !replicas.some((r) => r.name === c.name));
  return replicas.map((r) => r.name);
}

function replicaOptions(call: RuntimeCall, o: RollOut, r: Replica): RunOptions {
  const { app, spec, secrets } = o.release;
  return {
    name: r.name,
    image: o.release.imageRef,
    cmd: processCmd(spec.processes[r.process]),
    env: processEnv(spec, r.process, secrets, r.port),
    labels: {
      [LABELS.app]: app,
      [LABELS.process]: r.process,
      [LABELS.replica]: String(r.index),
      [LABELS.deployment]: o.release.deploymentId,
      [LABELS.release]: String(o.release.id),
    },
    ports: r.port === undefined ? undefined : [r.port],
    signal: call.signal,
  };
}

/**
 * Makes room for `r` among the app's own containers: one that held `r`'s slot under another name
 * (norn before names.ts called it norn-<app>-<process>-<i>) is found by its labels and replaced
 * like a same-named one, not orphaned holding the port; one of another slot that listens on `r`'s
 * port (the release moved its ports) goes first, or `r` could never start there.
 */
async function clearSlot(call: RuntimeCall, before: ContainerSummary[], r: Replica): Promise<void> {
  for (const c of before) {
    if (c.name === r.name) continue;
    const slot =
      c.labels[LABELS.process] === r.process && c.labels[LABELS.replica] === String(r.index);
    const port = r.port !== undefined && c.labels[PORT_LABEL] === String(r.port);
    if (!slot && !port) continue;
    call.log(`replacing ${c.name} with ${r.name}`);
    await call.docker.stopAndRemove(c.id);
  }
}

/** The app's long-running containers (one-off jobs, which carry no replica label, left out). */
export async function appReplicas(docker: DockerDriver, app: string): Promise<ContainerSummary[]> {
  const found = await docker.list({ [LABELS.app]: app });
  return found.filter((c) => c.labels[LABELS.replica] !== undefined);
}

/** Stops and removes the app's long-running containers that `pick` selects (one-off jobs are left alone). */
export async function removeContainers(
  call: Pick<RuntimeCall, 'docker' | 'log'>,
  app: string,
  pick: (c: { name: string; labels: Record<string, string> }) => boolean,
): Promise<string[]> {
  const gone = (await appReplicas(call.docker, app)).filter(pick);
  for (const c of gone) {
    call.log(`removing ${c.name}`);
    await call.docker.stopAndRemove(c.id);
  }
  return gone.map((c) => c.name);
}
