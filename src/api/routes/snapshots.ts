/**
 * /api/apps/:id/releases: what each deploy released. /api/apps/:id/snapshots: list an app's
 * database snapshots and restore one. A restore is not done
 * here: it is requested as a `restore` run, queued behind the app's deploys like any other run.
 */
import { checkTs } from '../../shared/drivers/postgres-snapshot-files.js';
import { NornError, notFound } from '../../shared/errors.js';
import * as routes from '../../shared/api/apps.js';
import { SnapshotStore } from '../../pipelines/deploy/snapshot-store.js';
import type { ApiDeps } from '../deps.js';
import type { Release } from '../../shared/api/schemas.js';
import { requireRedis, router } from './util.js';

type AppSpec = {
  infrastructure?: { postgres?: { database?: string } };
  deployPolicy?: { concurrency?: 'queue' | 'supersede' | 'reject' };
};

export function snapshotRoutes(deps: Pick<ApiDeps, 'apps' | 'runs' | 'db' | 'redis'>) {
  const { apps, runs } = deps;
  const snapshots = new SnapshotStore(deps.db);
  const find = async (id: string) => {
    const app = await apps.get(id);
    if (!app) throw notFound(`app ${id}`);
    return app;
  };
  return router()
    .openapi(routes.listReleases, async (c) => {
      const app = await find(c.req.valid('param').id);
      const { rows } = await deps.db.query<Release>(
        `SELECT id, run_id AS "runId", target, image_ref AS "imageRef", commit_sha AS "commitSha",
                digest, migrations_applied AS "migrationsApplied", snapshot_ts AS "snapshotTs",
                status, error, to_jsonb(created_at) #>> '{}' AS "createdAt",
                to_jsonb(activated_at) #>> '{}' AS "activatedAt",
                to_jsonb(ended_at) #>> '{}' AS "endedAt"
           FROM releases WHERE app_id = $1 ORDER BY id DESC LIMIT $2`,
        [app.id, c.req.valid('query').limit],
      );
      const iso = (t: string | null) => (t === null ? null : new Date(t).toISOString());
      return c.json(
        {
          releases: rows.map((r) => ({
            ...r,
            createdAt: iso(r.createdAt)!,
            activatedAt: iso(r.activatedAt),
            endedAt: iso(r.endedAt),
          })),
        },
        200,
      );
    })
    .openapi(routes.listSnapshots, async (c) => {
      const app = await find(c.req.valid('param').id);
      return c.json({ snapshots: await snapshots.list(app.id) }, 200);
    })
    .openapi(routes.restoreSnapshot, async (c) => {
      const { id, ts } = c.req.valid('param');
      const app = await find(id);
      checkTs(ts);
      if (!(await snapshots.get(app.id, ts))) throw notFound(`snapshot ${ts} of app ${app.id}`);
      const spec = app.spec as AppSpec;
      if (!spec.infrastructure?.postgres?.database) {
        throw new NornError(
          'CONFLICT',
          `app ${app.id} no longer declares infrastructure.postgres: there is no database to restore into`,
        );
      }
      requireRedis(deps.redis);
      const accepted = await runs.request({
        appId: app.id,
        pipeline: 'restore',
        params: { ts },
        policy: spec.deployPolicy?.concurrency ?? 'queue',
        requestedBy: 'api',
        spec: app.spec,
      });
      return c.json(accepted, 202);
    });
}
