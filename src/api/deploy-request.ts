/**
 * Requesting a deploy of an app: what `POST /api/apps/:id/deploy` and a webhook's auto-deploy both
 * do, so a push is held to exactly the checks a person's request is.
 */
import { NornError } from '../shared/errors.js';
import type { AppRecord } from '../shared/store/apps.js';
import { deployRefProblem } from '../shared/spec/infraspec.js';
import { readForgeState } from '../pipelines/forge/state.js';
import type { RunAccepted } from '../queues/runs.js';
import type { ApiDeps } from './deps.js';
import { requireRedis, storedSpec } from './routes/util.js';

/**
 * What a deploy without a ref deploys when the app names no `repo.branch`: the remote's HEAD, i.e.
 * the repository's default branch as the forge says (never an assumed `main`).
 */
export const REMOTE_DEFAULT_REF = 'HEAD';

export type DeployDeps = Pick<ApiDeps, 'runs' | 'redis' | 'db' | 'deployPipeline'>;

/**
 * Requests the deploy pipeline for `app` (as just read from the store) at `ref` (absent: `repo.branch`, else the remote's
 * HEAD). UNAVAILABLE (Redis down), SPEC_INVALID (the stored spec fails today's rules),
 * CONFLICT (a kubernetes app not forged) and BAD_REQUEST (a bad ref) are thrown before anything is
 * recorded.
 */
export async function requestDeploy(
  deps: DeployDeps,
  app: AppRecord,
  o: { ref?: unknown; requestedBy: string },
): Promise<RunAccepted> {
  requireRedis(deps.redis);
  const spec = storedSpec(app);
  // On kubernetes the app's objects and routing come from its forge: deploy a forged app only.
  if (spec.target === 'kubernetes') {
    const forge = await readForgeState(deps.db, app.id);
    if (forge.state !== 'forged')
      throw new NornError(
        'CONFLICT',
        `app ${app.id} is not forged (its forge state is ${forge.state}): forge it first (norn forge ${app.id}, POST /api/apps/${app.id}/forge)`,
        { details: { forgeState: forge.state } },
      );
  }
  const ref = o.ref ?? spec.repo?.branch ?? REMOTE_DEFAULT_REF;
  // The same rule as repo.branch in the infraspec, so a registered branch is always deployable.
  const refProblem = typeof ref === 'string' ? deployRefProblem(ref) : 'must be a string';
  if (refProblem) throw new NornError('BAD_REQUEST', `ref ${refProblem}`);
  return deps.runs.request({
    appId: app.id,
    pipeline: deps.deployPipeline,
    params: { ref },
    policy: spec.deployPolicy.concurrency,
    requestedBy: o.requestedBy,
    spec: app.spec,
  });
}
