/**
 * Long-running and one-off containers on the host network. `run` is idempotent by name: a
 * container made from the same image and settings is kept (and started if it stopped); anything
 * else under that name is replaced. The settings are compared through a hash label, so a changed
 * env or command also replaces the container, not only a new image.
 */
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { NornError } from '../../errors.js';
import { engineError, engineStatus, ignoreStatus, throwIfAborted } from './engine-errors.js';
import { PORT_LABEL, assertPortsFree } from './host-ports.js';
import { LineCollector, demuxFrames } from './streams.js';

export const CONFIG_HASH_LABEL = 'norn.config-hash';
/** The label naming the app a container belongs to: norn never touches another app's container. */
export const OWNER_LABEL = 'norn.app';

export type RestartPolicy = 'no' | 'on-failure' | 'unless-stopped' | 'always';

export interface RunOptions {
  name: string;
  image: string;
  cmd?: string[];
  env?: Record<string, string>;
  labels: Record<string, string>;
  /**
   * Ports the app listens on. Under host networking nothing is mapped; they are recorded as the
   * container's exposed ports so that `docker ps`/inspect show what the workload serves.
   */
  ports?: number[];
  /** Default `unless-stopped`: the workload comes back after a crash or an engine restart. */
  restart?: RestartPolicy;
  /** Grace between SIGTERM and SIGKILL when this container is stopped or replaced (default 10 s). */
  stopTimeoutSec?: number;
  signal?: AbortSignal;
}

/** `restartCount`: the engine's count when `run` returned (0 for a new container; a kept one's own). */
export interface RunResult {
  id: string;
  restartCount: number;
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  state: string;
  labels: Record<string, string>;
}

export interface ContainerState {
  running: boolean;
  /** The last exit code, once the container has exited at least once (also while it restarts). */
  exitCode: number | null;
  restarting: boolean;
  /** How often the engine restarted it (restart policy) since it was created. */
  restartCount: number;
  labels: Record<string, string>;
}

export const envList = (env: Record<string, string> = {}): string[] =>
  Object.entries(env).map(([key, value]) => `${key}=${value}`);

/** Hash of everything that makes two containers the same workload. */
function configHash(imageId: string, o: RunOptions): string {
  const sorted = (r: Record<string, string> = {}) =>
    Object.entries(r).sort(([a], [b]) => a.localeCompare(b));
  const material = JSON.stringify([
    imageId,
    o.cmd ?? null,
    sorted(o.env),
    sorted(o.labels),
    o.ports ?? [],
    o.restart ?? 'unless-stopped',
    o.stopTimeoutSec ?? null,
  ]);
  return createHash('sha256').update(material).digest('hex').slice(0, 32);
}

export async function runContainer(
  docker: Docker,
  imageId: string,
  o: RunOptions,
  secrets: readonly string[],
): Promise<RunResult> {
  const what = `starting container ${o.name}`;
  const hash = configHash(imageId, o);
  try {
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(o.signal, what);
      const existing = await ignoreStatus(docker.getContainer(o.name).inspect());
      if (
        existing &&
        existing.Image === imageId &&
        existing.Config.Labels?.[CONFIG_HASH_LABEL] === hash
      ) {
        if (!existing.State.Running && !existing.State.Restarting)
          await ignoreStatus(docker.getContainer(existing.Id).start(), [304]);
        return { id: existing.Id, restartCount: existing.RestartCount ?? 0 };
      }
      if (existing) {
        assertOwner(existing, o);
        await stopAndRemove(docker, existing.Id); // with the old container's own grace
      }
      // After the container it replaces has stopped: whoever holds the port now is someone else.
      await assertPortsFree(docker, o.ports ?? [], o.name);
      try {
        const created = await docker.createContainer({
          name: o.name,
          Image: o.image,
          Cmd: o.cmd,
          Env: envList(o.env),
          Labels: {
            ...o.labels,
            [CONFIG_HASH_LABEL]: hash,
            ...(o.ports?.length ? { [PORT_LABEL]: o.ports.join(',') } : {}),
          },
          ExposedPorts: Object.fromEntries((o.ports ?? []).map((p) => [`${p}/tcp`, {}])),
          StopTimeout: o.stopTimeoutSec ?? 10,
          // Init: the engine's tini is PID 1 and forwards SIGTERM, so an app that does not handle
          // signals itself (PID 1 ignores them by default) still stops at once on a replace.
          HostConfig: {
            NetworkMode: 'host',
            Init: true,
            RestartPolicy: { Name: o.restart ?? 'unless-stopped' },
          },
        });
        await created.start();
        return { id: created.id, restartCount: 0 };
      } catch (err) {
        // Another worker created the same name between our inspect and create: look again once.
        if (engineStatus(err) === 409 && attempt === 0) continue;
        throw err;
      }
    }
  } catch (err) {
    throw engineError(err, what, secrets, o.signal);
  }
}

/**
 * CONFLICT unless the container `existing` (found under the name norn wants) belongs to the app
 * `o` is for: a name clash must never replace another app's (or a foreign) container.
 */
export function assertOwner(
  existing: { Name?: string; Config: { Labels?: Record<string, string> | null } },
  o: { name: string; labels?: Record<string, string> },
): void {
  const owner = existing.Config.Labels?.[OWNER_LABEL];
  const mine = o.labels?.[OWNER_LABEL];
  if (owner !== undefined && owner === mine) return;
  throw new NornError(
    'CONFLICT',
    `a container named ${o.name} already exists and belongs to ${owner === undefined ? 'no norn app' : `app ${owner}`}, not to app ${mine ?? '(none)'}; norn leaves it alone (remove or rename it)`,
    { details: { container: o.name, owner: owner ?? null } },
  );
}

export async function listContainers(
  docker: Docker,
  labels: Record<string, string>,
): Promise<ContainerSummary[]> {
  const label = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  const found = await docker.listContainers({ all: true, filters: { label } });
  return found.map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    image: c.Image,
    state: c.State,
    labels: c.Labels ?? {},
  }));
}

/**
 * Graceful stop (SIGTERM, then SIGKILL after `timeoutSec`, by default the container's own stop
 * timeout), then removal; a missing container is fine.
 */
export async function stopAndRemove(
  docker: Docker,
  idOrName: string,
  timeoutSec?: number,
): Promise<void> {
  const container = docker.getContainer(idOrName);
  // 304: already stopped; 404: already gone.
  await ignoreStatus(container.stop(timeoutSec === undefined ? {} : { t: timeoutSec }), [304, 404]);
  // 409: the engine is already removing it (a concurrent call), which is the outcome we want.
  await ignoreStatus(container.remove({ force: true, v: true }), [404, 409]);
}

export async function inspectState(
  docker: Docker,
  idOrName: string,
): Promise<ContainerState | null> {
  const info = await ignoreStatus(docker.getContainer(idOrName).inspect());
  if (!info) return null;
  const { Running, Restarting, Status, ExitCode } = info.State;
  const restartCount = info.RestartCount ?? 0;
  // A container that never exited has no exit code worth reporting; one that restarts has.
  const exited = Restarting || restartCount > 0 || (!Running && Status !== 'created');
  return {
    running: Running,
    restarting: Restarting,
    exitCode: exited ? ExitCode : null,
    restartCount,
    labels: info.Config.Labels ?? {},
  };
}

/** The last `lines` lines a container wrote (stdout and stderr), scrubbed of `redact`. */
export async function logsTail(
  docker: Docker,
  idOrName: string,
  lines: number,
  redact: readonly string[],
): Promise<string[]> {
  const raw = await ignoreStatus(
    docker.getContainer(idOrName).logs({ follow: false, stdout: true, stderr: true, tail: lines }),
  );
  if (!raw) return [];
  const collector = new LineCollector(redact);
  demuxFrames(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)), collector);
  collector.flush();
  return collector.tail.slice(-lines);
}

export async function removeImage(docker: Docker, tag: string): Promise<void> {
  try {
    await ignoreStatus(docker.getImage(tag).remove());
  } catch (err) {
    if (engineStatus(err) === 409) {
      throw new NornError(
        'CONFLICT',
        `image ${tag} is still used by a container; stop the container first`,
        { cause: err },
      );
    }
    throw err;
  }
}
