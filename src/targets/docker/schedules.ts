/**
 * The docker target's schedules: each scheduled process of a release is a BullMQ job scheduler
 * (the deploy's cron.ts implements them), whose ticks run the process as a one-off container.
 */
import type { Infraspec } from '../../shared/spec/infraspec.js';
import { isScheduled } from './runtime.js';

/** What the docker target needs of scheduled processes' job schedulers (cron.ts implements it). */
export interface CronScheduler {
  /** Creates or updates the scheduler of one scheduled process; returns its id. */
  upsert(o: {
    appId: string;
    process: string;
    schedule: string;
    timezone: string | undefined;
    releaseId: number;
  }): Promise<string>;
  /** Removes the app's schedulers whose ids are not in `keep`; returns the removed ids. */
  prune(appId: string, keep: string[]): Promise<string[]>;
  /** The ids of the app's schedulers (read back for live state; absent: none are reported). */
  list?(appId: string): Promise<string[]>;
}

/** Makes the scheduled processes of a release the app's job schedulers; prunes the others. */
export async function syncSchedulers(
  cron: CronScheduler,
  app: string,
  spec: Infraspec,
  releaseId: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (const [process, p] of Object.entries(spec.processes)) {
    if (!isScheduled(p) || p.replicas === 0) continue;
    ids.push(
      await cron.upsert({
        appId: app,
        process,
        schedule: p.schedule!,
        timezone: p.timezone,
        releaseId,
      }),
    );
  }
  await cron.prune(app, ids);
  return ids;
}
