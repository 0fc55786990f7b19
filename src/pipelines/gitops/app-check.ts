/**
 * The drift-check of an app: its live state read back through its target, and its routes, against
 * its active release (src/gitops/app-drift.ts), fingerprinted like a stack's plan. A deploy under
 * way reads as drift (its new containers carry a release not yet active), so the check first
 * waits until no run holds the app's own scope (`app:<id>`), then reads.
 */
import type { StepContext } from '../../queues/pipeline.js';
import { checkAppDrift, ingressRoutes } from '../../gitops/app-drift.js';
import { driftFingerprint } from '../../gitops/tofu.js';
import { NornError } from '../../shared/errors.js';
import { pause } from '../../shared/pause.js';
import { targetFor } from '../../targets/types.js';
import type { DeployServices, Infraspec } from '../deploy/types.js';
import type { DriftOutput } from './types.js';

/** How long a check waits for the app's deploy (or restore, forge …) to end. */
const WAIT_FOR_APP_MS = 15 * 60_000;
const POLL_MS = 1_000;

type Ctx = Pick<StepContext, 'run' | 'signal' | 'log'>;

async function appRunHolding(s: DeployServices, appId: string): Promise<string | undefined> {
  const { rows } = await s.db.query<{ runId: string; pipeline: string }>(
    `SELECT l.run_id AS "runId", r.pipeline FROM leases l JOIN runs r ON r.id = l.run_id
     WHERE l.scope = $1`,
    [`app:${appId}`],
  );
  return rows[0] ? `${rows[0].pipeline} run ${rows[0].runId}` : undefined;
}

async function untilAppIdle(ctx: Ctx, s: DeployServices, now = Date.now): Promise<void> {
  const deadline = now() + WAIT_FOR_APP_MS;
  let said = false;
  for (;;) {
    const holder = await appRunHolding(s, ctx.run.appId);
    if (!holder) return;
    if (now() > deadline)
      throw new NornError(
        'TIMEOUT',
        `app ${ctx.run.appId} has had a ${holder} in progress for ${WAIT_FOR_APP_MS / 60_000} min; its drift can only be told when it ends`,
      );
    if (!said) ctx.log(`waiting for the app's ${holder} to end (a deploy under way is not drift)`);
    said = true;
    await pause(POLL_MS, ctx.signal);
  }
}

export async function checkAppDriftStep(ctx: Ctx, s: DeployServices): Promise<DriftOutput> {
  const spec = ctx.run.spec as unknown as Infraspec;
  await untilAppIdle(ctx, s);
  const found = await checkAppDrift(
    { releases: s.releases, target: targetFor(s.targets, spec), readRoutes: ingressRoutes(s) },
    { id: ctx.run.appId, spec },
    ctx.signal,
  );
  for (const line of found.details) ctx.log(line);
  return {
    status: found.drifted ? 'drifted' : 'clean',
    fingerprint: driftFingerprint(found.summary),
    summary: found.summary,
    details: found.details,
  };
}
