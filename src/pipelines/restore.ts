/**
 * The `restore` pipeline: puts snapshot `params.ts` back into the app's database. It is a run like a
 * deploy (queued, evented as restore.*, cancellable), so the engine's per-app lease queues it behind
 * the app's deploys and never lets it overlap one. Restoring is repeatable: pg_restore --clean
 * --single-transaction either replaces the snapshot's objects with their data or changes nothing.
 */
import { access } from 'node:fs/promises';
import type { PipelineDefinition, StepDefinition } from '../queues/pipeline.js';
import { restoreSnapshot } from '../shared/drivers/postgres-snapshot.js';
import { checkTs } from '../shared/drivers/postgres-snapshot-files.js';
import { NornError } from '../shared/errors.js';
import { ensureDatabase } from './deploy/steps/migrate.js';
import { adminUrl, declaredDatabase } from './deploy/steps/snapshot.js';
import type { DeployServices } from './deploy/types.js';

export interface RestoreOutput {
  ts: string;
  database: string;
  sizeBytes: number;
}

export const restoreStep: StepDefinition<DeployServices> = {
  name: 'restore',
  async run(ctx, s) {
    const ts = ctx.run.params.ts;
    checkTs(ts as string);
    const appId = ctx.run.appId;
    const database = declaredDatabase(ctx);
    if (!database) {
      throw new NornError(
        'BAD_REQUEST',
        `app ${appId} declares no infrastructure.postgres: there is no database to restore into`,
      );
    }
    const admin = adminUrl(s);
    const record = await s.snapshots.get(appId, ts as string);
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
      ts: ts as string,
      signal: ctx.signal,
      onLine: ctx.log,
    });
    const out: RestoreOutput = { ts: info.ts, database, sizeBytes: info.sizeBytes };
    return out;
  },
};

export const restorePipeline: PipelineDefinition<DeployServices> = {
  name: 'restore',
  version: '1',
  events: 'restore',
  steps: [restoreStep],
};
