/** norn snapshots <app> [restore <ts>]: list an app's database snapshots, or restore one. */
import type { RunAccepted, Snapshot, SnapshotList } from '../../shared/api/index.js';
import type { CliContext } from '../context.js';
import { seg } from '../context.js';
import { EXIT, usageError } from '../errors.js';
import { formatAge, formatBytes, table } from '../render.js';
import { followAccepted } from './runs.js';

/** What the table shows of a snapshot. */
type SnapshotRow = Pick<Snapshot, 'ts' | 'database' | 'takenAt' | 'sizeBytes'>;

export async function snapshots(ctx: CliContext): Promise<number> {
  const [app, action, ts] = ctx.positionals as [string, string | undefined, string | undefined];
  if (action === undefined) return list(ctx, app);
  if (action !== 'restore' || !ts) throw usageError('usage: norn snapshots <app> restore <ts>');
  if (ctx.values.json) throw usageError('--json lists snapshots; it does not apply to restore');
  const accepted = await ctx.api.post<RunAccepted>(
    `api/apps/${seg(app)}/snapshots/${seg(ts)}/restore`,
  );
  return followAccepted(ctx, `restoring ${app} from snapshot ${ts}`, accepted);
}

async function list(ctx: CliContext, app: string): Promise<number> {
  if (ctx.values['no-wait']) throw usageError('--no-wait applies to restore only');
  const { snapshots: all } = await ctx.api.get<SnapshotList>(`api/apps/${seg(app)}/snapshots`);
  if (ctx.values.json) {
    ctx.out.json({ snapshots: all });
    return EXIT.ok;
  }
  if (!all.length) {
    ctx.out.line(`no snapshots of ${app}`);
    return EXIT.ok;
  }
  ctx.out.line(snapshotTable(all));
  return EXIT.ok;
}

/** TS · DATABASE · SIZE · TAKEN AT (newest first, as the api sends them). */
export function snapshotTable(rows: SnapshotRow[], now = Date.now()): string {
  return table(
    ['TS', 'DATABASE', 'SIZE', 'TAKEN AT'],
    rows.map((s) => [
      s.ts,
      s.database,
      formatBytes(Number(s.sizeBytes)),
      `${new Date(s.takenAt)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')} (${formatAge(s.takenAt, now)})`,
    ]),
  );
}
