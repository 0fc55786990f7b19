/**
 * Watching a docker release become healthy: every replica of every process must run (and answer
 * 2xx on its health path) without a break for minHealthyTime. Any failed look restarts that
 * window; a replica that exits ends the watch at once (crash-looping: its exit code and last lines
 * of output say why).
 */
import { isNornError } from '../../shared/errors.js';
import { pause } from '../../shared/pause.js';
import type { HealthVerdict, OnProgress } from '../types.js';
import { checkReplica, type Expect, type Replica } from './replica-check.js';
import type { RuntimeCall } from './runtime.js';

export interface Watch {
  replicas: Replica[];
  expect: Expect;
  minMs: number;
  timeoutMs: number;
  onProgress?: OnProgress;
}

/** Probes all replicas every poll until they stayed healthy for `minMs`, or `timeoutMs` ran out. */
export async function watch(call: RuntimeCall, w: Watch): Promise<HealthVerdict> {
  const started = Date.now();
  let since: number | undefined;
  let last: string | undefined; // what the previous look found (undefined: healthy)
  let lastProblem: string | undefined;
  for (;;) {
    let look: Look;
    try {
      look = await lookAll(call, w.replicas, w.expect);
    } catch (err) {
      if (isNornError(err) && err.code === 'STEP_FAILED')
        return { ok: false, healthyForMs: 0, problem: err.message };
      throw err;
    }
    const { problem } = look;
    w.onProgress?.({ ready: look.ready, desired: w.replicas.length, message: problem });
    const now = Date.now();
    if (problem) {
      if (problem !== last)
        call.log(since === undefined ? problem : `${problem} (healthy window restarts)`);
      since = undefined;
      lastProblem = problem;
    } else {
      if (since === undefined)
        call.log(`all ${w.replicas.length} replicas healthy; watching for ${w.minMs} ms`);
      since ??= now;
      if (now - since >= w.minMs) return { ok: true, healthyForMs: now - since };
    }
    last = problem;
    if (now - started >= w.timeoutMs)
      return { ok: false, healthyForMs: 0, problem: problem ?? lastProblem };
    await pause(call.pollMs, call.signal);
  }
}

interface Look {
  /** Why the first unhealthy replica is not healthy, or undefined. */
  problem: string | undefined;
  /** Replicas checked healthy before the first problem (all of them without one). */
  ready: number;
}

/** Looks at the replicas in order up to the first unhealthy one; throws when one crashed. */
async function lookAll(call: RuntimeCall, replicas: Replica[], expect: Expect): Promise<Look> {
  let ready = 0;
  for (const r of replicas) {
    const why = await checkReplica(call, r, expect);
    if (why) return { problem: `${r.process} replica ${r.index} not healthy: ${why}`, ready };
    ready++;
  }
  return { problem: undefined, ready };
}
