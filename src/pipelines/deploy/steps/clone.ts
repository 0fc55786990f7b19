/**
 * Deploy step `clone`: checks out the requested ref (`params.ref`, else the spec's `repo.branch`)
 * of the app's repository into the run's own directory and records the commit SHA it resolved to,
 * so every later step, on any worker, works from exactly that commit.
 */
import { cloneAt } from '../../../shared/drivers/git.js';
import { NornError } from '../../../shared/errors.js';
import type { StepContext, StepDefinition } from '../../../queues/pipeline.js';
import type { CloneOutput, DeployServices } from '../types.js';
import { pinnedSpec, sourceDir } from '../workspace.js';

const DEFAULT_BRANCH = 'main';

/** The repository URL and ref this run deploys; SPEC_INVALID / BAD_REQUEST when unusable. */
export function cloneTarget(ctx: StepContext): { url: string; ref: string } {
  const spec = pinnedSpec(ctx);
  const url = spec.repo?.url;
  if (typeof url !== 'string' || url === '') {
    throw new NornError(
      'SPEC_INVALID',
      `app ${ctx.run.appId} has no repo.url in its infraspec; a deploy needs a repository to build from`,
    );
  }
  const requested = ctx.run.params.ref;
  if (
    requested !== undefined &&
    requested !== null &&
    (typeof requested !== 'string' || requested === '')
  ) {
    throw new NornError(
      'BAD_REQUEST',
      'the deploy parameter "ref" must be a non-empty branch, tag or commit SHA',
    );
  }
  const ref = (requested as string | undefined | null) ?? spec.repo?.branch ?? DEFAULT_BRANCH;
  return { url, ref };
}

export const clone: StepDefinition<DeployServices> = {
  name: 'clone',
  // Network hiccups are retried (the driver marks them retryable); bad refs and auth fail at once.
  attempts: 3,
  backoffMs: 2_000,

  /**
   * Clones into `${workDir}/${runId}/src`. Re-running is safe: the driver empties a directory an
   * earlier attempt left behind. Credentials (NORN_GIT_TOKEN / NORN_GIT_SSH_KEY) reach git through
   * its environment only, and the driver scrubs them from every line it hands to `ctx.log`.
   */
  async run(ctx, services): Promise<CloneOutput> {
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
};
