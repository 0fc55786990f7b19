/**
 * /api/apps/:id/snapshots: list an app's database snapshots and restore one. A restore is not done
 * here: it is requested as a `restore` run, queued behind the app's deploys like any other run.
 */
import { Hono } from 'hono';
import { checkTs } from '../../shared/drivers/postgres-snapshot-files.js';
import { NornError, notFound } from '../../shared/errors.js';
import { SnapshotStore } from '../../pipelines/deploy/snapshot-store.js';
import type { ApiDeps } from '../deps.js';
import { requireRedis } from './util.js';

type AppSpec = {
  infrastructure?: { postgres?: { database?: string } };
  deployPolicy?: { concurrency?: 'queue' | 'supersede' | 'reject' };
};

export function snapshotRoutes(deps: Pick<ApiDeps, 'apps' | 'runs' | 'db' | 'redis'>) {
  const { apps, runs } = deps;
  const snapshots = new SnapshotStore(deps.db);
  return new Hono()
    .get('/:id/snapshots', async (c) => {
      const app = await apps.get(c.req.param('id'));
      if (!app) throw notFound(`app ${c.req.param('id')}`);
      return c.json({ snapshots: await snapshots.list(app.id) });
    })
    .post('/:id/snapshots/:ts/restore', async (c) => {
      const app = await apps.get(c.req.param('id'));
      if (!app) throw notFound(`app ${c.req.param('id')}`);
      const ts = c.req.param('ts');
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
