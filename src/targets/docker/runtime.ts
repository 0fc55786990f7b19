/**
 * The docker target's release mechanics: how a release's processes become containers (names,
 * labels, env, ports). Rolling a release out is rolling.ts; looking at a replica is
 * replica-check.ts; watching a release become healthy is health.ts.
 *
 * Containers are `norn.<app>.<process>.<replica>` or the same with `.b` (names.ts). A process with
 * port P is served by the Docker host's ingress proxy on P (one route per process, rolling.ts);
 * each replica listens on a port of its own, taken free from NORN_DOCKER_REPLICA_PORTS and
 * recorded on its container (label norn.port), and is one of the route's upstreams.
 * `docker.run` is idempotent by name, so rolling a release out again (a re-run step, a rollback)
 * keeps containers that are already right; it never replaces another app's container, and never
 * starts one on a port in use.
 */
import {
  PORT_LABEL,
  type ContainerSummary,
  type DockerDriver,
} from '../../shared/drivers/docker.js';
import type { IngressProxy } from '../../shared/drivers/caddy.js';
import { durationMs, type Infraspec, type InfraspecProcess } from '../../shared/spec/infraspec.js';
import { replicaName } from './names.js';
import type { Replica } from './replica-check.js';

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
  ingress: IngressCall;
}

/** The Docker host's ingress proxy, and how the rollout uses it. */
export interface IngressCall {
  proxy: IngressProxy;
  /** How long an old replica keeps serving its in-flight requests after it left the route. */
  drainMs: number;
  /** Where replicas' ports are taken from (inclusive). */
  replicaPorts: { first: number; last: number };
}

export const isScheduled = (p: InfraspecProcess) => typeof p.schedule === 'string';

/** One replica slot of a long-running process: what its container must be, before it has a port. */
export interface Slot {
  process: string;
  index: number;
  /** The port the process is served on (the proxy listens there); undefined: it serves none. */
  servedPort: number | undefined;
  healthPath: string | undefined;
  probeTimeoutMs: number;
}

/** Every replica slot of the release's long-running processes, in rollout order. */
export function slotsOf(spec: Infraspec): Slot[] {
  const out: Slot[] = [];
  for (const [process, p] of Object.entries(spec.processes)) {
    if (isScheduled(p)) continue;
    for (let index = 0; index < p.replicas; index++) {
      out.push({
        process,
        index,
        servedPort: p.port,
        healthPath: p.health?.path,
        probeTimeoutMs: p.health ? durationMs(p.health.timeout) : 5_000,
      });
    }
  }
  return out;
}

/** The replica of `slot` as container `name` listening on `port` (undefined: the slot serves none). */
export function replicaOf(slot: Slot, name: string, port: number | undefined): Replica {
  return {
    process: slot.process,
    index: slot.index,
    name,
    port,
    healthUrl:
      port !== undefined && slot.healthPath
        ? `http://${DOCKER_HOST}:${port}${slot.healthPath}`
        : undefined,
    probeTimeoutMs: slot.probeTimeoutMs,
  };
}

/** The port a container recorded (PORT_LABEL), or undefined. */
export const portOf = (c: { labels: Record<string, string> }): number | undefined => {
  const port = Number(c.labels[PORT_LABEL]?.split(',')[0]);
  return Number.isInteger(port) && port > 0 ? port : undefined;
};

export const inSlot = (c: ContainerSummary, s: Pick<Slot, 'process' | 'index'>) =>
  c.labels[LABELS.process] === s.process && c.labels[LABELS.replica] === String(s.index);

/**
 * The replicas of release `releaseId` as they run now, slot by slot: each slot's container of
 * that release (its name and recorded port), or, where it has none, the slot's first name with no
 * port (a look then says it does not exist, or whose it is).
 */
export async function releaseReplicas(
  docker: DockerDriver,
  app: string,
  spec: Infraspec,
  releaseId: number,
): Promise<Replica[]> {
  const live = await appReplicas(docker, app);
  return slotsOf(spec).map((slot) => {
    const c = live.find((x) => inSlot(x, slot) && x.labels[LABELS.release] === String(releaseId));
    return c
      ? replicaOf(slot, c.name, slot.servedPort === undefined ? undefined : portOf(c))
      : replicaOf(slot, replicaName(app, slot.process, slot.index), undefined);
  });
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
