/**
 * The deploy finalizer's compensation: a run that ended (cancelled, failed, lease lost) after
 * submit began and before forge finished leaves the app as a failed health check would: the
 * previous release serving again (or, on a first deploy, no containers), the route the run wrote
 * reverted, and the release table saying so. It runs after the run ended, as a BullMQ job with
 * retries, so it outlives NORN_CANCEL_GRACE_MS and a worker killed on the way; it is driven only by
 * what the run recorded (its release row: previousReleaseId, routesBefore) and is idempotent.
 *
 * A worker shutdown hands a step back to another worker and ends no run, so it never gets here.
 */
import { removeAppIngress, setAppIngress } from '../../shared/drivers/cloudflared.js';
import { lockWaitNote, withAppLock } from './app-lock.js';
import { targetFor, type TargetCall } from '../../targets/index.js';
import { parseSpec } from './docker-runtime.js';
import { ingressFor } from './ingress.js';
import type { Release } from './releases.js';
import { putBack } from './rollback.js';
import type { DeployServices, ReadsOutputs } from './types.js';

/** What compensation did, for the cleanup step's output and log. */
export interface Compensation {
  releaseId: number;
  outcome: string;
}

/** The release still to be taken back, or undefined when the run left nothing half-done. */
async function pending(
  ctx: ReadsOutputs<'forge'>,
  s: DeployServices,
): Promise<Release | undefined> {
  const release = await s.releases.byDeployment(ctx.run.id);
  if (!release || (release.status !== 'deploying' && release.status !== 'active')) return undefined;
  // forge finished (or was skipped): the release was deployed to the end; nothing to undo.
  if ((await ctx.output('forge')) !== undefined) return undefined;
  return release;
}

/** Reverts the app's rules to what forge found before it wrote (nothing when forge wrote none). */
async function revertRoutes(ctx: ReadsOutputs<'forge'>, s: DeployServices, release: Release) {
  const before = release.routesBefore;
  if (before === null) return;
  const ingress = ingressFor(s, parseSpec(release.spec));
  if ('skip' in ingress) return;
  const edited = await ingress.edit(
    (text) =>
      before.length
        ? setAppIngress(text, release.appId, before)
        : removeAppIngress(text, release.appId),
    ctx.signal,
  );
  if (!edited) return; // cloudflared is gone: no rules to revert
  ctx.log(
    edited.changed
      ? `ingress rules of ${release.appId} reverted in ${ingress.where}`
      : 'ingress rules already as before',
  );
  // An earlier attempt may have written the rules and died before the restart: restart again then.
  if (edited.changed || ctx.step.attempt > 1)
    ctx.log((await ingress.restart({ signal: ctx.signal, log: ctx.log })).note);
}

/**
 * Takes back a release the run left half-deployed. On the last attempt a failure is written into
 * the release row before it is rethrown, so the table never claims a release it could not verify.
 */
export async function compensate(
  ctx: ReadsOutputs<'forge'>,
  s: DeployServices,
  lastAttempt: boolean,
): Promise<Compensation | undefined> {
  if (!(await pending(ctx, s))) return undefined;
  return withAppLock(
    s.db,
    ctx.run.appId,
    ctx.signal,
    async () => {
      const release = await pending(ctx, s); // again, under the lock
      return release && takeBack(ctx, s, release, lastAttempt);
    },
    () => ctx.log(lockWaitNote(ctx.run.appId)),
  );
}

async function takeBack(
  ctx: ReadsOutputs<'forge'>,
  s: DeployServices,
  release: Release,
  lastAttempt: boolean,
): Promise<Compensation> {
  const reason = `the deploy ended before release ${release.id} was verified and routed`;
  const leave = async (outcome: string) => {
    await s.releases.markEnded(ctx.run.id, 'failed', `${reason}; ${outcome}`);
    return { releaseId: release.id, outcome };
  };
  // A later deploy took the app over meanwhile: what serves is its business now.
  if (await s.releases.hasNewer(release)) return leave('a later deploy replaced it');
  // As after a failed health check: left in place, and said so (an active one stays active).
  const spec = parseSpec(release.spec);
  if (!spec.deployPolicy.autoRollback)
    return leave(`autoRollback is off, so release ${release.id} was left in place`);
  const target = targetFor(s.targets, spec);
  const call: TargetCall = { signal: ctx.signal, redact: [], log: ctx.log };
  try {
    await revertRoutes(ctx, s, release);
    const { previous, done } = await putBack(s, target, call, release);
    const message = `${reason}; ${done}`;
    const status = previous ? 'rolled_back' : 'failed';
    await s.releases.reinstate(ctx.run.id, previous?.id ?? null, status, message);
    ctx.log(message);
    return { releaseId: release.id, outcome: done };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const message = `${reason}; putting the app back failed: ${why}`;
    if (lastAttempt) await s.releases.reinstate(ctx.run.id, null, 'failed', message);
    throw err;
  }
}
