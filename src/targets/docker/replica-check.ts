/**
 * Looking at one replica of a release: is its container the release's, running, never exited
 * since it started, and answering 2xx on its health path? A container that exited (its restart
 * policy brings it back, so it shows as restarting, or running with a higher restart count) has
 * crashed: waiting longer only hides that, so the look fails at once with the exit code and the
 * container's last lines of output, scrubbed of secrets.
 *
 * Whose answer a probe gets: on the host network, norn cannot ask which process holds a socket
 * (that needs the host's /proc, which a worker in a container does not see). What it can make sure
 * of: nothing listened on the replica's port right before its container started (the driver
 * checks, after the container it replaces stopped), the container is this release's, running and
 * never exited since, and the probe goes to its own port. A process that took the port in
 * between would make the replica's own bind fail, and an app that cannot listen exits: a crash.
 */
import { NornError } from '../../shared/errors.js';
import { redactText } from '../../shared/exec.js';
import { pause } from '../../shared/pause.js';
import { httpProbe, type ContainerState, type DockerDriver } from '../../shared/drivers/docker.js';

/** How many lines of a crashed replica's output its error carries. */
export const CRASH_TAIL_LINES = 20;

export interface Replica {
  process: string;
  index: number;
  name: string;
  port: number | undefined;
  healthUrl: string | undefined;
  probeTimeoutMs: number;
}

/** What a look needs: the engine, and what the replica must be. */
export interface LookCall {
  docker: DockerDriver;
  signal: AbortSignal;
  /** Secret values to scrub from anything that leaves (messages, log lines). */
  redact: string[];
}

export interface Expect {
  /** The release the container must carry (label norn.release). */
  releaseId: number;
  /** The container's restart count when it was started for this release; more means it exited. */
  restarts: number;
}

const crashed = (s: ContainerState, e: Expect) =>
  s.restarting || s.restartCount > e.restarts || (!s.running && s.exitCode !== null);

/** STEP_FAILED saying that `r` exited: exit code, restarts, and its last lines of output. */
async function crashError(call: LookCall, r: Replica, s: ContainerState, e: Expect) {
  const tail = await call.docker
    .logsTail(r.name, CRASH_TAIL_LINES, call.redact)
    .catch((err: unknown) => [`(its output could not be read: ${(err as Error).message})`]);
  const restarts = s.restartCount - e.restarts;
  const how = restarts > 0 ? `, restarted ${restarts} time${restarts === 1 ? '' : 's'}` : '';
  const output = tail.length
    ? `; its last ${tail.length} line${tail.length === 1 ? '' : 's'} of output:\n${tail.map((l) => `  ${l}`).join('\n')}`
    : '; it wrote no output';
  const message = `${r.process} replica ${r.index} (container ${r.name}) exited with code ${s.exitCode ?? 'unknown'}${how}${output}`;
  return new NornError('STEP_FAILED', redactText(message, call.redact), {
    details: { process: r.process, replica: r.index, exitCode: s.exitCode, tail },
  });
}

/**
 * One look at a replica: undefined when it runs as `e` expects (and answers 2xx on its health
 * path), else why not. Throws STEP_FAILED at once when the container has exited.
 */
export async function checkReplica(
  call: LookCall,
  r: Replica,
  e: Expect,
): Promise<string | undefined> {
  const state = await call.docker.inspectState(r.name);
  if (!state) return 'its container does not exist';
  if (state.labels['norn.release'] !== String(e.releaseId))
    return `container ${r.name} is release ${state.labels['norn.release'] ?? '(none)'}'s, not release ${e.releaseId}'s`;
  if (crashed(state, e)) throw await crashError(call, r, state, e);
  if (!state.running) return 'its container is not running yet';
  if (!r.healthUrl) return undefined;
  // Its own port: the driver made sure nothing else listened there before the container started.
  const probe = await httpProbe(r.healthUrl, r.probeTimeoutMs, call.signal);
  if (probe.status !== undefined && probe.status >= 200 && probe.status < 300) return undefined;
  return `GET ${r.healthUrl} ${probe.status === undefined ? `failed (${probe.error ?? 'no answer'})` : `answered ${probe.status}`}`;
}

/** Waits until `r` checks out; STEP_FAILED with the last reason after `timeoutMs`, or at once on a crash. */
export async function waitForReplica(
  call: LookCall & { pollMs: number },
  r: Replica,
  e: Expect,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problem = await checkReplica(call, r, e);
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
