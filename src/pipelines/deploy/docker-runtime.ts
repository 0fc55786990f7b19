/**
 * The docker target's release mechanics, shared by submit, healthy, rollback and the cron jobs:
 * how a release's processes become containers (names, labels, env), rolling a release out one
 * replica at a time, looking at a replica, and putting the previous release back.
 *
 * Containers are `norn-<app>-<process>-<replica>`; a process with port P runs replica i on P+i
 * (host networking: replicas cannot share a port). `docker.run` is idempotent by name, so rolling
 * a release out again (a re-run step, a rollback) keeps containers that are already right.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { NornError, isNornError } from '../../shared/errors.js';
import { redactText } from '../../shared/exec.js';
import { httpProbe, type DockerDriver } from '../../shared/drivers/docker.js';
import { decryptSecretsEnv, type SopsFormat } from '../../shared/secrets/sops.js';
import {
  durationMs,
  formatProblems,
  healthUrl,
  parseInfraspec,
  replicaPort,
  type Infraspec,
  type InfraspecProcess,
} from '../../shared/spec/infraspec.js';
import type { Release } from './releases.js';
import type { DeployServices } from './types.js';

export { requireDocker } from './workspace.js';

export const LABELS = {
  app: 'norn.app',
  process: 'norn.process',
  replica: 'norn.replica',
  deployment: 'norn.deployment',
  release: 'norn.release',
} as const;

export interface Replica {
  process: string;
  index: number;
  name: string;
  port: number | undefined;
  healthUrl: string | undefined;
  probeTimeoutMs: number;
}

/** What the runtime functions need besides the release itself. */
export interface RuntimeCall {
  docker: DockerDriver;
  signal: AbortSignal;
  log: (line: string) => void;
  pollMs: number;
  /** Secret values to scrub from anything that leaves (messages, log lines). */
  redact: string[];
}

/** A stored or pinned spec, with defaults applied; SPEC_INVALID lists every problem. */
export function parseSpec(raw: unknown): Infraspec {
  const parsed = parseInfraspec(raw);
  if (!parsed.ok)
    throw new NornError(
      'SPEC_INVALID',
      `the app's infraspec is invalid:\n${formatProblems(parsed.problems)}`,
    );
  return parsed.spec;
}

export const containerName = (app: string, process: string, replica: number) =>
  `norn-${app}-${process}-${replica}`;

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
        name: containerName(app, process, index),
        port,
        healthUrl: port !== undefined && p.health ? healthUrl(port, p.health.path) : undefined,
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

/** Decrypts the secrets file a release recorded (encrypted) with the worker's SOPS keys. */
export async function releaseSecrets(
  s: Pick<DeployServices, 'sopsKeys'>,
  release: Release,
): Promise<Record<string, string>> {
  if (!release.secretsEnc) return {};
  return decryptSecretsEnv(
    release.secretsEnc,
    (release.secretsFormat ?? 'yaml') as SopsFormat,
    await s.sopsKeys(),
  );
}

/** The same error with secret values scrubbed from its message. */
export function scrubbed(err: unknown, redact: string[]): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const message = redactText(e.message, redact);
  if (message === e.message) return e;
  return isNornError(e)
    ? new NornError(e.code, message, { retryable: e.retryable, details: e.details })
    : new Error(message);
}

export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    throw new NornError(
      'CANCELLED',
      `stopped: ${typeof signal.reason === 'string' ? signal.reason : 'aborted'}`,
    );
  }
}

/** One look at a replica: undefined when it runs (and answers 2xx on its health path), else why not. */
export async function checkReplica(
  docker: DockerDriver,
  r: Replica,
  signal: AbortSignal,
): Promise<string | undefined> {
  const state = await docker.inspectState(r.name);
  if (!state) return 'its container does not exist';
  if (state.restarting)
    return `its container is restarting (last exit code ${state.exitCode ?? 'unknown'})`;
  if (!state.running)
    return `its container is not running (exit code ${state.exitCode ?? 'none yet'})`;
  if (!r.healthUrl) return undefined;
  const probe = await httpProbe(r.healthUrl, r.probeTimeoutMs, signal);
  if (probe.status !== undefined && probe.status >= 200 && probe.status < 300) return undefined;
  return `GET ${r.healthUrl} ${probe.status === undefined ? `failed (${probe.error ?? 'no answer'})` : `answered ${probe.status}`}`;
}

/** Waits until `r` checks out; STEP_FAILED with the last reason after `timeoutMs`. */
export async function waitForReplica(
  call: RuntimeCall,
  r: Replica,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problem = await checkReplica(call.docker, r, call.signal);
    if (!problem) return;
    if (Date.now() >= deadline) {
      throw new NornError(
        'STEP_FAILED',
        redactText(
          `${r.process} replica ${r.index} not healthy within ${timeoutMs} ms: ${problem}`,
          call.redact,
        ),
        { details: { process: r.process, replica: r.index } },
      );
    }
    await pause(call.pollMs, call.signal);
  }
}

export interface RollOut {
  app: string;
  release: Pick<Release, 'id' | 'deploymentId' | 'imageRef'>;
  spec: Infraspec;
  secrets: Record<string, string>;
  /** Called just before the first container is changed. */
  onTouch?: () => void;
}

/**
 * Starts the release's containers replica by replica, each replacing the same-named container of
 * the release before it; a replica with a health path must answer before the next one is replaced.
 * Then removes the app's containers the release does not have (scaled down, process removed).
 */
export async function rollOut(call: RuntimeCall, o: RollOut): Promise<string[]> {
  const timeoutMs = durationMs(o.spec.deployPolicy.healthTimeout);
  const replicas = replicasOf(o.app, o.spec);
  for (const r of replicas) {
    const p = o.spec.processes[r.process];
    o.onTouch?.();
    call.log(`starting ${r.name} (${o.release.imageRef})`);
    await call.docker
      .run({
        name: r.name,
        image: o.release.imageRef,
        cmd: processCmd(p),
        env: processEnv(o.spec, r.process, o.secrets, r.port),
        labels: {
          [LABELS.app]: o.app,
          [LABELS.process]: r.process,
          [LABELS.replica]: String(r.index),
          [LABELS.deployment]: o.release.deploymentId,
          [LABELS.release]: String(o.release.id),
        },
        ports: r.port === undefined ? undefined : [r.port],
        signal: call.signal,
      })
      .catch((err: unknown) => {
        throw scrubbed(err, call.redact);
      });
    await waitForReplica(call, r, timeoutMs);
    call.log(r.healthUrl ? `${r.name} answers ${r.healthUrl}` : `${r.name} is running`);
  }
  await removeContainers(call, o.app, (c) => !replicas.some((r) => r.name === c.name));
  return replicas.map((r) => r.name);
}

/** Stops and removes the app's long-running containers that `pick` selects (one-off jobs are left alone). */
export async function removeContainers(
  call: Pick<RuntimeCall, 'docker' | 'log'>,
  app: string,
  pick: (c: { name: string; labels: Record<string, string> }) => boolean,
): Promise<string[]> {
  const found = await call.docker.list({ [LABELS.app]: app });
  const gone = found.filter((c) => c.labels[LABELS.replica] !== undefined && pick(c));
  for (const c of gone) {
    call.log(`removing ${c.name}`);
    await call.docker.stopAndRemove(c.id);
  }
  return gone.map((c) => c.name);
}

/** Makes the scheduled processes of a release the app's job schedulers; prunes the others. */
export async function syncSchedulers(
  s: Pick<DeployServices, 'cron'>,
  app: string,
  spec: Infraspec,
  releaseId: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (const [process, p] of Object.entries(spec.processes)) {
    if (!isScheduled(p) || p.replicas === 0) continue;
    ids.push(
      await s.cron.upsert({
        appId: app,
        process,
        schedule: p.schedule!,
        timezone: p.timezone,
        releaseId,
      }),
    );
  }
  await s.cron.prune(app, ids);
  return ids;
}

/**
 * Rollback: puts `previous` (the last known good release) back exactly as it was, with its own
 * image, spec and secrets file (decrypted again), one replica at a time, and its schedulers.
 */
export async function restoreRelease(
  s: DeployServices,
  call: RuntimeCall,
  app: string,
  previous: Release,
): Promise<void> {
  const spec = parseSpec(previous.spec);
  const secrets = await releaseSecrets(s, previous);
  const restoring: RuntimeCall = { ...call, redact: [...call.redact, ...Object.values(secrets)] };
  call.log(`rolling back to release ${previous.id} (${previous.imageRef})`);
  await rollOut(restoring, { app, release: previous, spec, secrets });
  await syncSchedulers(s, app, spec, previous.id);
}

/**
 * Ends a release that did not make it, per its deployPolicy: with autoRollback the previous release
 * is put back (or, with none, the new containers are removed); without it everything is left as it
 * is. Returns the complete operator message, starting with `reason`.
 */
export async function endFailedRelease(
  s: DeployServices,
  call: RuntimeCall,
  o: {
    app: string;
    runId: string;
    release: Release;
    spec: Infraspec;
    reason: string;
  },
): Promise<string> {
  const reason = redactText(o.reason, call.redact);
  if (call.signal.aborted) return reason; // stopped: whoever re-runs or cleans up decides
  if (!o.spec.deployPolicy.autoRollback) {
    const message = `${reason}; autoRollback is off, so release ${o.release.id} was left in place`;
    await s.releases.markEnded(o.runId, 'failed', message);
    return message;
  }
  const previous = await s.releases.active(o.app);
  try {
    if (previous && previous.deploymentId !== o.runId) {
      await restoreRelease(s, call, o.app, previous);
      const message = `${reason}; rolled back to release ${previous.id} (${previous.imageRef})`;
      await s.releases.markEnded(o.runId, 'rolled_back', message);
      return message;
    }
    await removeContainers(call, o.app, (c) => c.labels[LABELS.release] === String(o.release.id));
    await syncSchedulers(s, o.app, { ...o.spec, processes: {} }, o.release.id);
    const message = `${reason}; there is no previous release to roll back to, so the new containers were removed`;
    await s.releases.markEnded(o.runId, 'failed', message);
    return message;
  } catch (err) {
    const why = redactText(err instanceof Error ? err.message : String(err), call.redact);
    const message = `${reason}; rolling back failed: ${why}`;
    await s.releases.markEnded(o.runId, 'failed', message);
    return message;
  }
}
