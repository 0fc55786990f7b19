/**
 * Deploy step `snapshot`: a pg_dump of the app's database before `migrate` changes it, recorded in
 * the snapshots table (the api lists and restores from there) and pruned to `snapshots.keep`.
 *
 * The snapshot folder (NORN_SNAPSHOT_DIR) is the truth about which snapshots exist: a snapshot is its
 * dump plus sidecar there. Each run reconciles the table with the folder, so a worker killed between
 * writing a dump and recording it, or between pruning and marking, leaves nothing wrong for long.
 */
import { cancelled, connectClient, sqlState } from '../../../shared/drivers/postgres-connect.js';
import {
  listSnapshots,
  pruneSnapshots,
  takeSnapshot,
} from '../../../shared/drivers/postgres-snapshot.js';
import { NornError } from '../../../shared/errors.js';
import { skipStep, type StepContext } from '../../../queues/pipeline.js';
import { deployStep, type DeployServices } from '../types.js';
import { pinnedSpec } from '../workspace.js';

/** The app's declared database, or undefined when it declares none. */
export function declaredDatabase(ctx: Pick<StepContext, 'run'>): string | undefined {
  return pinnedSpec(ctx).infrastructure?.postgres?.database;
}

/** The admin URL of the apps' PostgreSQL server; a clear failure when it is not configured. */
export function adminUrl(s: Pick<DeployServices, 'appDatabaseUrl'>): string {
  if (!s.appDatabaseUrl) {
    throw new NornError(
      'UNAVAILABLE',
      'app declares infrastructure.postgres but NORN_APP_DATABASE_URL is not set',
    );
  }
  return s.appDatabaseUrl;
}

/** Whether `database` exists on the server behind the admin URL. */
export async function databaseExists(
  admin: string,
  database: string,
  signal: AbortSignal,
): Promise<boolean> {
  const client = await connectClient(admin, {
    signal,
    applicationName: 'norn-deploy',
    what: "the apps' PostgreSQL server",
  });
  try {
    const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    return rows.length > 0;
  } catch (err) {
    if (signal.aborted) throw cancelled(`checking for database "${database}"`);
    const state = sqlState(err);
    throw new NornError('UNAVAILABLE', `could not check whether database "${database}" exists`, {
      retryable: state === undefined || /^(08|57P)/.test(state),
      details: { sqlState: state },
    });
  } finally {
    await client.end().catch(() => {});
  }
}

export const snapshot = deployStep('snapshot', {
  // Transient failures (a lost connection) are worth one more try; the step is safe to repeat.
  attempts: 2,
  async run(ctx, s) {
    const database = declaredDatabase(ctx);
    if (!database) return skipStep('no infrastructure.postgres declared');
    const admin = adminUrl(s);
    if (!(await databaseExists(admin, database, ctx.signal))) {
      return skipStep(`database ${database} does not exist yet: nothing to snapshot`);
    }

    const appId = ctx.run.appId;
    const info = await takeSnapshot({
      serverUrl: admin,
      database,
      app: appId,
      dir: s.snapshotDir,
      signal: ctx.signal,
      onLine: ctx.log,
    });
    await s.snapshots.record({
      appId,
      database,
      ts: info.ts,
      takenAt: info.takenAt,
      sizeBytes: info.sizeBytes,
      location: info.path,
      sha256: info.sha256,
      deploymentId: ctx.run.id,
    });

    const keep = pinnedSpec(ctx).snapshots?.keep ?? 5;
    const pruned = (await pruneSnapshots({ app: appId, dir: s.snapshotDir, keep })).map(
      (p) => p.ts,
    );
    if (pruned.length)
      ctx.log(
        `pruned ${pruned.length} old snapshot(s), keeping the newest ${keep}: ${pruned.join(', ')}`,
      );
    await reconcile(ctx, s, pruned);

    return { ts: info.ts, database, sizeBytes: info.sizeBytes, sha256: info.sha256, pruned };
  },
});

/**
 * Makes the table match the folder: rows whose snapshot is gone are marked removed (this run's
 * prune, or an earlier run's that died before marking), and complete snapshots an earlier killed
 * attempt wrote but never recorded are recorded (their deployment is unknown).
 */
async function reconcile(
  ctx: Pick<StepContext, 'run' | 'log'>,
  s: DeployServices,
  pruned: string[],
): Promise<void> {
  const appId = ctx.run.appId;
  const onDisk = await listSnapshots({ app: appId, dir: s.snapshotDir });
  const kept = new Set(onDisk.map((i) => i.ts));
  const rows = await s.snapshots.list(appId);
  const gone = [...new Set([...pruned, ...rows.filter((r) => !kept.has(r.ts)).map((r) => r.ts)])];
  await s.snapshots.markRemoved(appId, gone);
  const recorded = new Set(rows.map((r) => r.ts));
  for (const i of onDisk.filter((i) => !recorded.has(i.ts))) {
    ctx.log(`recording snapshot ${i.ts}, left unrecorded by an interrupted run`);
    await s.snapshots.record({
      appId,
      database: i.database,
      ts: i.ts,
      takenAt: i.takenAt,
      sizeBytes: i.sizeBytes,
      location: i.path,
      sha256: i.sha256,
      deploymentId: null,
    });
  }
}
