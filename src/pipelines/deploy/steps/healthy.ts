/**
 * Deploy step `healthy`: the new release counts as good once its target says every replica of
 * every process has been running (and answering 2xx on its health path) without a break for
 * deployPolicy.minHealthyTime (src/targets: `waitHealthy`). Any failed look restarts that window;
 * after deployPolicy.healthTimeout, or at once when a replica exits (crash-looping: its exit code
 * and last lines of output say why), the release is ended per its policy (rolled back to the
 * previous release, or failed) and the run fails with the reason. On the way it reports the
 * target's progress as `deploy.progress {step, ready, desired}` events.
 * Never retried: a second wait would only delay the same verdict.
 */
import { NornError } from '../../../shared/errors.js';
import { durationMs, type Infraspec } from '../../../shared/spec/infraspec.js';
import { targetFor, type TargetCall } from '../../../targets/index.js';
import { lockWaitNote, withAppLock } from '../app-lock.js';
import { isScheduled, parseSpec, releaseSecrets } from '../docker-runtime.js';
import { endFailedRelease } from '../rollback.js';
import { deployStep } from '../types.js';

/** The release's long-running processes that run replicas (what the step reports healthy). */
const servedProcesses = (spec: Infraspec) =>
  Object.entries(spec.processes)
    .filter(([, p]) => !isScheduled(p) && p.replicas > 0)
    .map(([name]) => name);

export const healthy = deployStep('healthy', {
  async run(ctx, s) {
    const release = await s.releases.byDeployment(ctx.run.id);
    if (!release) throw new NornError('STEP_FAILED', 'submit recorded no release for this deploy');
    const spec = parseSpec(release.spec);
    const app = ctx.run.appId;
    const processes = servedProcesses(spec);
    if (release.status === 'active') return { healthyForMs: 0, processes }; // re-run after it was activated
    if (release.status !== 'deploying') {
      throw new NornError(
        'STEP_FAILED',
        release.error ?? `release ${release.id} is ${release.status}`,
      );
    }
    const target = targetFor(s.targets, spec);
    // Only to keep the values out of messages (rollback errors); not worth failing the step over.
    const redact = Object.values(await releaseSecrets(s, release, spec).catch(() => ({})));
    const call: TargetCall = { signal: ctx.signal, redact, log: ctx.log };
    const minMs = durationMs(spec.deployPolicy.minHealthyTime);
    // deploy.progress {step, ready, desired} each time the count of ready replicas changes
    // (per task group on nomad: {group, desired, placed, healthy, unhealthy} too).
    const verdict = await target.waitHealthy(
      { app, id: release.id, spec },
      {
        ...call,
        onProgress: (p) =>
          ctx.progress({
            ready: p.ready,
            desired: p.desired,
            ...(p.group !== undefined
              ? {
                  group: p.group,
                  placed: p.placed ?? 0,
                  healthy: p.ready,
                  unhealthy: p.unhealthy ?? 0,
                }
              : {}),
          }),
      },
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
      () => endFailedRelease(s, target, call, { runId: ctx.run.id, release, spec, reason }),
      () => ctx.log(lockWaitNote(app)),
    );
    throw new NornError('STEP_FAILED', message);
  },
});
