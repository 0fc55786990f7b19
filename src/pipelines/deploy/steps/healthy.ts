/**
 * Deploy step `healthy`: the new release counts as good once every replica of every process has
 * been running (and answering 2xx on its health path) without a break for deployPolicy.minHealthyTime.
 * Any failed look restarts that window; after deployPolicy.healthTimeout, or at once when a replica
 * exits (crash-looping: its exit code and last lines of output say why), the release is ended per
 * its policy (rolled back to the previous release, or failed) and the run fails with the reason.
 * Never retried: a second wait would only delay the same verdict.
 */
import { NornError, isNornError } from '../../../shared/errors.js';
import { durationMs } from '../../../shared/spec/infraspec.js';
import { lockWaitNote, withAppLock } from '../app-lock.js';
import {
  checkReplica,
  parseSpec,
  pause,
  replicasOf,
  releaseSecrets,
  requireDocker,
  type Replica,
  type RuntimeCall,
} from '../docker-runtime.js';
import type { Expect } from '../replica-check.js';
import { endFailedRelease } from '../rollback.js';
import { deployStep } from '../types.js';

interface Verdict {
  ok: boolean;
  healthyForMs: number;
  problem?: string;
}

/** Probes all replicas every poll until they stayed healthy for `minMs`, or `timeoutMs` ran out. */
async function watch(
  call: RuntimeCall,
  replicas: Replica[],
  expect: Expect,
  minMs: number,
  timeoutMs: number,
): Promise<Verdict> {
  const started = Date.now();
  let since: number | undefined;
  let last: string | undefined; // what the previous look found (undefined: healthy)
  let lastProblem: string | undefined;
  for (;;) {
    let problem: string | undefined;
    try {
      problem = await firstProblem(call, replicas, expect);
    } catch (err) {
      if (isNornError(err) && err.code === 'STEP_FAILED')
        return { ok: false, healthyForMs: 0, problem: err.message };
      throw err;
    }
    const now = Date.now();
    if (problem) {
      if (problem !== last)
        call.log(since === undefined ? problem : `${problem} (healthy window restarts)`);
      since = undefined;
      lastProblem = problem;
    } else {
      if (since === undefined)
        call.log(`all ${replicas.length} replicas healthy; watching for ${minMs} ms`);
      since ??= now;
      if (now - since >= minMs) return { ok: true, healthyForMs: now - since };
    }
    last = problem;
    if (now - started >= timeoutMs)
      return { ok: false, healthyForMs: 0, problem: problem ?? lastProblem };
    await pause(call.pollMs, call.signal);
  }
}

/** Why the first unhealthy replica is not healthy, or undefined; throws when one crashed. */
async function firstProblem(call: RuntimeCall, replicas: Replica[], expect: Expect) {
  for (const r of replicas) {
    const why = await checkReplica(call, r, expect);
    if (why) return `${r.process} replica ${r.index} not healthy: ${why}`;
  }
  return undefined;
}

export const healthy = deployStep('healthy', {
  async run(ctx, s) {
    const release = await s.releases.byDeployment(ctx.run.id);
    if (!release) throw new NornError('STEP_FAILED', 'submit recorded no release for this deploy');
    const spec = parseSpec(release.spec);
    const app = ctx.run.appId;
    const replicas = replicasOf(app, spec);
    const processes = [...new Set(replicas.map((r) => r.process))];
    if (release.status === 'active') return { healthyForMs: 0, processes }; // re-run after it was activated
    if (release.status !== 'deploying') {
      throw new NornError(
        'STEP_FAILED',
        release.error ?? `release ${release.id} is ${release.status}`,
      );
    }
    // Only to keep the values out of messages (rollback errors); not worth failing the step over.
    const redact = Object.values(await releaseSecrets(s, release).catch(() => ({})));
    const call: RuntimeCall = {
      docker: requireDocker(s, 'healthy'),
      signal: ctx.signal,
      pollMs: s.healthPollMs,
      redact,
      log: ctx.log,
    };
    const minMs = durationMs(spec.deployPolicy.minHealthyTime);
    const verdict =
      replicas.length === 0
        ? { ok: true, healthyForMs: 0 }
        : // Every container of the release was created by this run's submit: any restart is a crash.
          await watch(
            call,
            replicas,
            { releaseId: release.id, restarts: 0 },
            minMs,
            durationMs(spec.deployPolicy.healthTimeout),
          );
    if (verdict.ok) {
      await s.releases.activate(ctx.run.id);
      ctx.log(`release ${release.id} is active`);
      return { healthyForMs: verdict.healthyForMs, processes };
    }
    const reason = verdict.problem ?? `release ${release.id} did not stay healthy for ${minMs} ms`;
    ctx.log(reason);
    const message = await withAppLock(
      s.db,
      app,
      ctx.signal,
      () => endFailedRelease(s, call, { runId: ctx.run.id, release, spec, reason }),
      () => ctx.log(lockWaitNote(app)),
    );
    throw new NornError('STEP_FAILED', message);
  },
});
