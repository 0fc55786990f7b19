/**
 * The `restore` pipeline: puts snapshot `params.ts` back into the app's database. It is a run like a
 * deploy (queued, evented as restore.*, cancellable), so the engine's per-app lease queues it behind
 * the app's deploys and never lets it overlap one. Restoring is repeatable: pg_restore --clean
 * --single-transaction either replaces the snapshot's objects with their data or changes nothing.
 */
import { access } from 'node:fs/promises';
import { z } from 'zod';
import { definePipeline, defineStep } from '../queues/pipeline.js';
import { restoreSnapshot } from '../shared/drivers/postgres-snapshot.js';
import { checkTs } from '../shared/drivers/postgres-snapshot-files.js';
import { NornError } from '../shared/errors.js';
import { ensureDatabase } from './deploy/steps/migrate.js';
import { adminUrl, declaredDatabase } from './deploy/steps/snapshot.js';
import type { DeployServices } from './deploy/types.js';

export const RestoreOutput = z.object({
  ts: z.string(),
  database: z.string(),
  sizeBytes: z.number().nonnegative(),
});
export type RestoreOutput = z.output<typeof RestoreOutput>;

/** `ts`: which snapshot of the app to restore (a snapshot's timestamp, as the api lists them). */
export const RestoreParams = z.object({
  ts: z.string({ error: 'the restore parameter "ts" must be a snapshot timestamp' }),
});

export const restoreStep = defineStep<DeployServices>()({
  name: 'restore',
  output: RestoreOutput,
  params: RestoreParams,
  async run(ctx, s) {
    const ts = ctx.params.ts;
    checkTs(ts);
    const appId = ctx.run.appId;
    const database = declaredDatabase(ctx);
    if (!database) {
      throw new NornError(
        'BAD_REQUEST',
        `app ${appId} declares no infrastructure.postgres: there is no database to restore into`,
      );
    }
    const admin = adminUrl(s);
    const record = await s.snapshots.get(appId, ts);
    if (!record)
      throw new NornError(
        'NOT_FOUND',
        `snapshot ${ts} of app ${appId} not found (never taken, or pruned)`,
      );
    try {
      await access(record.location);
    } catch {
      throw new NornError(
        'NOT_FOUND',
        `snapshot ${ts} of app ${appId} is recorded but its file ${record.location} is not on this worker`,
      );
    }
    if (record.database !== database)
      ctx.log(
        `snapshot of database "${record.database}" restored into "${database}", the app's database now`,
      );

    // The database may have been dropped since; the snapshot recreates its objects in a new one.
    if (await ensureDatabase(admin, database, ctx.signal))
      ctx.log(`created database "${database}"`);
    const info = await restoreSnapshot({
      serverUrl: admin,
      database,
      app: appId,
      dir: s.snapshotDir,
      ts: ts,
      signal: ctx.signal,
      onLine: ctx.log,
    });
    return { ts: info.ts, database, sizeBytes: info.sizeBytes };
  },
});

export const restorePipeline = definePipeline<DeployServices>()({
  name: 'restore',
  version: '1',
  events: 'restore',
  steps: [restoreStep],
});
