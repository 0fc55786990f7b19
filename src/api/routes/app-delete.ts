/**
 * DELETE /api/apps/:id: a soft delete (see 001_baseline.sql for why the history stays). norn
 * has no teardown yet, so an app that still has something alive is refused with a 409 naming it:
 * runs queued or running, a release active or deploying, containers labelled with the app on the
 * target's engine. Nothing is removed from the target here.
 */
import { NornError, notFound } from '../../shared/errors.js';
import type { DeleteBlockers } from '../../shared/store/apps.js';
import type { ApiDeps } from '../deps.js';

export async function deleteApp(deps: Pick<ApiDeps, 'apps' | 'appContainers'>, id: string) {
  if (!(await deps.apps.get(id))) throw notFound(`app ${id}`);
  // Containers only appear through runs, and the delete below refuses while one is queued or
  // running, so asking the engine first leaves no gap.
  const containers = (await deps.appContainers?.(id)) ?? [];
  const result = await deps.apps.softDelete(id, { blockedElsewhere: containers.length > 0 });
  if (result.action === 'missing') throw notFound(`app ${id}`);
  if (result.action === 'blocked') throw blocked(id, result.blockers, containers);
  return { app: { id, deletedAt: result.deletedAt } };
}

function blocked(id: string, b: DeleteBlockers, containers: string[]): NornError {
  const parts = [
    ...b.runs.map((r) => `run ${r.id} (${r.pipeline}, ${r.status})`),
    ...b.releases.map((r) => `release ${r.id} (${r.status})`),
    ...(containers.length ? [`containers ${containers.join(', ')}`] : []),
  ];
  const hints = [
    b.runs.length ? 'cancel its runs or let them end' : '',
    b.releases.length || containers.length
      ? 'norn has no teardown yet that would remove its releases and containers, so an app that has them cannot be deleted'
      : '',
  ].filter(Boolean);
  return new NornError(
    'CONFLICT',
    `app ${id} cannot be deleted while it has ${parts.join(', ')}: ${hints.join('; ')}`,
    { details: { blockers: { runs: b.runs, releases: b.releases, containers } } },
  );
}
