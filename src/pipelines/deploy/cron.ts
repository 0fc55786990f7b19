/**
 * Scheduled processes (`processes.<name>.schedule`): each becomes a BullMQ job scheduler, upserted
 * by id so repeated deploys and several workers never duplicate it; its jobs run the release's
 * image command as a one-off container.
 */
export interface CronScheduler {
  /** Creates or updates the scheduler of one scheduled process; returns its id. */
  upsert(o: { appId: string; process: string; schedule: string; timezone: string | undefined; releaseId: number }): Promise<string>;
  /** Removes the app's schedulers whose ids are not in `keep`; returns the removed ids. */
  prune(appId: string, keep: string[]): Promise<string[]>;
}
