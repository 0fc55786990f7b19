/**
 * Deploy step `cleanup`, also the deploy pipeline's finalizer: removes the run's working directory
 * (clone and build context) and any one-off test container of the run that a killed worker left
 * behind, and, after a run that ended between submit and the end of forge, puts the app back as
 * it was (compensate.ts). It runs after succeeded, failed and cancelled runs alike, so it assumes
 * nothing about which earlier steps ran.
 */
import { deployStep, type DeployServices, type ReadsOutputs } from '../types.js';
import { compensate } from '../compensate.js';
import { removeRunDir } from '../workspace.js';

/**
 * Test containers of this run that are still there. The test step's driver removes its container
 * on exit, timeout and cancel, so one is left only when a worker died mid-test. Without a build
 * output the test step never started: nothing to look for, and no engine needs to answer.
 */
async function removeTestContainers(
  ctx: ReadsOutputs<'build'>,
  services: DeployServices,
): Promise<string[]> {
  const docker = services.docker;
  if (!docker || !(await ctx.output('build'))) return [];
  const leftovers = await docker.list({ 'norn.deployment': ctx.run.id, 'norn.one-off': '1' });
  const removed: string[] = [];
  for (const c of leftovers) {
    await docker.stopAndRemove(c.id, { timeoutSec: 0 });
    ctx.log(`removed leftover test container ${c.name}`);
    removed.push(`container ${c.name}`);
  }
  return removed;
}

/** The finalizer job is scheduled with as many attempts (src/queues/runs.ts scheduleFinalizer). */
const CLEANUP_ATTEMPTS = 3;

export const cleanup = deployStep('cleanup', {
  attempts: CLEANUP_ATTEMPTS,

  /** Idempotent: a directory or container already gone counts as removed earlier, not as an error. */
  async run(ctx, services) {
    const dirs = await removeRunDir(services, ctx.run.id);
    for (const dir of dirs) ctx.log(`removed ${dir}`);
    const containers = await removeTestContainers(ctx, services);
    const compensated = await compensate(ctx, services, ctx.step.attempt >= CLEANUP_ATTEMPTS);
    return { removed: [...dirs, ...containers], ...(compensated ? { compensated } : {}) };
  },
});
