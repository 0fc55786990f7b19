/**
 * Putting an app back as it was before a release that did not make it: the release that served
 * before it (recorded by submit as previousReleaseId) comes back with its own image, spec, secrets
 * and schedulers, or, on a first deploy, the new containers go; the release table then says so.
 * A failed health check does it in the step (endFailedRelease); a run that ended without finishing
 * (cancelled, lease lost, a step that failed outside the health checks) has it done by the deploy
 * finalizer (compensate.ts), which also reverts the routes forge wrote.
 */
import { redactText } from '../../shared/exec.js';
import type { Target, TargetCall } from '../../targets/index.js';
import { parseSpec, releaseSecrets, targetRelease } from './docker-runtime.js';
import type { Release } from './releases.js';
import type { DeployServices, Infraspec } from './types.js';

/** The release that served before `release`; older rows without one fall back to the active one. */
export async function previousOf(
  s: Pick<DeployServices, 'releases'>,
  release: Release,
): Promise<Release | null> {
  if (release.previousReleaseId !== null) return s.releases.byId(release.previousReleaseId);
  const active = await s.releases.active(release.appId);
  return active && active.id !== release.id ? active : null;
}

/**
 * Takes `release` off its target: the previous release (the last known good one) back exactly as
 * it was, with its own image, spec and secrets file (decrypted again), one replica at a time, and
 * its schedulers; or, with none, the release's own containers and schedulers removed. Returns what
 * was done, for the operator's message.
 */
export async function putBack(
  s: DeployServices,
  target: Target,
  call: TargetCall,
  release: Release,
): Promise<{ previous: Release | null; done: string }> {
  const previous = await previousOf(s, release);
  const failed = { id: release.id };
  if (!previous) {
    await target.rollBack({ app: release.appId, failed, previous: null }, call);
    return {
      previous,
      done: 'there is no previous release to roll back to, so the new containers were removed',
    };
  }
  const spec = parseSpec(previous.spec);
  const secrets = await releaseSecrets(s, previous, spec);
  const restoring: TargetCall = { ...call, redact: [...call.redact, ...Object.values(secrets)] };
  call.log(`rolling back to release ${previous.id} (${previous.imageRef})`);
  await target.rollBack(
    { app: release.appId, failed, previous: targetRelease(previous, spec, secrets) },
    restoring,
  );
  return { previous, done: `rolled back to release ${previous.id} (${previous.imageRef})` };
}

/**
 * Ends a release that did not make it, per its deployPolicy: with autoRollback the previous release
 * is put back (or, with none, the new containers are removed); without it everything is left as it
 * is. Returns the complete operator message, starting with `reason`.
 */
export async function endFailedRelease(
  s: DeployServices,
  target: Target,
  call: TargetCall,
  o: {
    runId: string;
    release: Release;
    spec: Infraspec;
    reason: string;
  },
): Promise<string> {
  const reason = redactText(o.reason, call.redact);
  if (call.signal.aborted) return reason; // stopped: a re-run or the deploy finalizer decides
  if (!o.spec.deployPolicy.autoRollback) {
    const message = `${reason}; autoRollback is off, so release ${o.release.id} was left in place`;
    await s.releases.markEnded(o.runId, 'failed', message);
    return message;
  }
  try {
    const { previous, done } = await putBack(s, target, call, o.release);
    const message = `${reason}; ${done}`;
    await s.releases.markEnded(o.runId, previous ? 'rolled_back' : 'failed', message);
    // An auto-revert is news for whoever watches the app (NORN_ALERT_WEBHOOK_URLS); never throws.
    if (previous)
      await s.gitops.alerts.send({
        kind: 'deploy.reverted',
        subject: `app:${o.release.appId}`,
        summary: `app ${o.release.appId}: release ${o.release.id} reverted to ${previous.id}: ${message}`,
        details: { releaseId: o.release.id, previousReleaseId: previous.id },
        runId: o.runId,
      });
    return message;
  } catch (err) {
    const why = redactText(err instanceof Error ? err.message : String(err), call.redact);
    const message = `${reason}; rolling back failed: ${why}`;
    await s.releases.markEnded(o.runId, 'failed', message);
    return message;
  }
}
