/**
 * Deploy step `clone`: checks out the requested ref (`params.ref`, else the spec's `repo.branch`)
 * of the app's repository into the run's own directory and records the commit SHA it resolved to,
 * so every later step, on any worker, works from exactly that commit.
 */
import { z } from 'zod';
import { cloneAt } from '../../../shared/drivers/git.js';
import { NornError } from '../../../shared/errors.js';
import type { StepContext } from '../../../queues/pipeline.js';
import { deployStep } from '../types.js';
import { pinnedSpec, sourceDir } from '../workspace.js';

/** No ref and no repo.branch: the remote's HEAD, the repository's default branch (not `main`). */
const DEFAULT_BRANCH = 'HEAD';

const REF_PROBLEM = 'the deploy parameter "ref" must be a non-empty branch, tag or commit SHA';

/** The params clone reads: `ref` (absent or null: the spec's repo.branch, else the remote's HEAD). */
export const CloneParams = z.object({
  ref: z.string({ error: REF_PROBLEM }).min(1, { error: REF_PROBLEM }).nullish(),
});
export type CloneParams = z.output<typeof CloneParams>;

/** The repository URL and ref this run deploys; SPEC_INVALID when the spec names no repository. */
export function cloneTarget(ctx: Pick<StepContext<object, CloneParams>, 'run' | 'params'>): {
  url: string;
  ref: string;
} {
  const spec = pinnedSpec(ctx);
  const url = spec.repo?.url;
  if (typeof url !== 'string' || url === '') {
    throw new NornError(
      'SPEC_INVALID',
      `app ${ctx.run.appId} has no repo.url in its infraspec; a deploy needs a repository to build from`,
    );
  }
  const ref = ctx.params.ref ?? spec.repo?.branch ?? DEFAULT_BRANCH;
  return { url, ref };
}

export const clone = deployStep('clone', {
  params: CloneParams,
  // Network hiccups are retried (the driver marks them retryable); bad refs and auth fail at once.
  attempts: 3,
  backoffMs: 2_000,

  /**
   * Clones into `${workDir}/${runId}/src`. Re-running is safe: the driver empties a directory an
   * earlier attempt left behind. Credentials (NORN_GIT_TOKEN / NORN_GIT_SSH_KEY) reach git through
   * its environment only, and the driver scrubs them from every line it hands to `ctx.log`.
   */
  async run(ctx, services) {
    const { url, ref } = cloneTarget(ctx);
    const dir = sourceDir(services, ctx.run.id);
    ctx.log(`cloning ${ref} of ${url}`);
    const { commitSha } = await cloneAt({
      url,
      ref,
      dir,
      auth: services.git,
      signal: ctx.signal,
      onLine: ctx.log,
    });
    ctx.log(`${ref} is commit ${commitSha}`);
    return { commitSha, ref, repoUrl: url };
  },
});
