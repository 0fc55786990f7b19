/**
 * Scheduled processes (`processes.<name>.schedule`): each becomes a BullMQ job scheduler, upserted
 * by id so repeated deploys and several workers never duplicate it; its jobs run the release's
 * image command on the release's target (docker: as a one-off container).
 *
 * Job data names the release only ({ appId, process, releaseId }): env and secrets are read from
 * the release row when the job runs (secrets decrypted then), so nothing secret sits in Redis.
 */
import { Queue, UnrecoverableError, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { NornError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { schedulerRepeat } from '../../shared/spec/infraspec.js';
import type { SopsKeys } from '../../shared/secrets/sops.js';
import { targetFor, type CronScheduler, type TargetRegistry } from '../../targets/index.js';
import { isScheduled, parseSpec, releaseSecrets, targetRelease } from './docker-runtime.js';
import type { ReleaseStore } from './releases.js';

export type { CronScheduler };

/** The one queue all scheduled processes' jobs go to. */
export const CRON_QUEUE = 'cron';
const JOB_NAME = 'cron';

export interface CronJobData {
  appId: string;
  process: string;
  releaseId: number;
}
export interface CronJobResult {
  exitCode: number;
  tail: string[];
}

/** App and process names are DNS labels (no "."), so `<app>.` prefixes never collide. */
export const cronSchedulerId = (appId: string, process: string) => `${appId}.${process}`;

export interface CronSchedulerHandle extends CronScheduler {
  queue: Queue<CronJobData>;
  close(): Promise<void>;
}

export function createCronScheduler(o: {
  connection: Redis;
  prefix: string;
  releases: ReleaseStore;
}): CronSchedulerHandle {
  const queue = new Queue<CronJobData>(CRON_QUEUE, { connection: o.connection, prefix: o.prefix });
  return {
    queue,
    async upsert({ appId, process, schedule, timezone, releaseId }) {
      const release = await o.releases.byId(releaseId);
      if (!release || release.appId !== appId)
        throw new NornError('NOT_FOUND', `release ${releaseId} of app ${appId} not found`);
      const id = cronSchedulerId(appId, process);
      await queue.upsertJobScheduler(
        id,
        schedulerRepeat(schedule, timezone), // what the infraspec schema checked the schedule with
        {
          name: JOB_NAME,
          data: { appId, process, releaseId },
          // A tick is not retried (the next tick comes); keep a bounded history for Bull Board.
          opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 500 } },
        },
      );
      return id;
    },
    async prune(appId, keep) {
      const removed: string[] = [];
      for (const s of await queue.getJobSchedulers(0, -1)) {
        const id = s.id ?? s.key;
        if (!id.startsWith(`${appId}.`) || keep.includes(id)) continue;
        await queue.removeJobScheduler(id);
        removed.push(id);
      }
      return removed;
    },
    async list(appId) {
      const ids = (await queue.getJobSchedulers(0, -1)).map((s) => s.id ?? s.key);
      return ids.filter((id) => id.startsWith(`${appId}.`));
    },
    close: () => queue.close(),
  };
}

export interface CronProcessorDeps {
  releases: Pick<ReleaseStore, 'byId'>;
  targets: TargetRegistry;
  sopsKeys: () => Promise<SopsKeys>;
  /** NORN_APP_DATABASE_URL: a release declaring infrastructure.postgres gets DATABASE_URL. */
  appDatabaseUrl: string | undefined;
  log?: Logger;
  /** Kill a job's container after this long (default: no limit). */
  timeoutMs?: number;
}

function jobData(data: unknown): CronJobData {
  const d = data as Partial<CronJobData> | null;
  if (
    typeof d?.appId !== 'string' ||
    typeof d.process !== 'string' ||
    typeof d.releaseId !== 'number'
  ) {
    throw new UnrecoverableError(
      'SPEC_INVALID: cron job data must be { appId, process, releaseId }',
    );
  }
  return { appId: d.appId, process: d.process, releaseId: d.releaseId };
}

/**
 * The processor of the `cron` queue: loads the job's release, decrypts its secrets, and has the
 * release's target run the process's command once (docker: a one-off container of its image).
 * A non-zero exit fails the job with the output's tail; the job's return value is
 * `{ exitCode, tail }`.
 */
export function createCronProcessor(
  deps: CronProcessorDeps,
): Processor<CronJobData, CronJobResult> {
  // Three declared parameters: BullMQ passes the AbortSignal only to processors with length >= 3.
  return async function runCronJob(
    job: Job<CronJobData, CronJobResult>,
    _token?: string,
    signal?: AbortSignal,
  ) {
    const { appId, process, releaseId } = jobData(job.data);
    const release = await deps.releases.byId(releaseId);
    if (!release || release.appId !== appId)
      throw new UnrecoverableError(`NOT_FOUND: release ${releaseId} of ${appId} no longer exists`);
    const spec = parseSpec(release.spec);
    const p = spec.processes[process];
    if (!p || !isScheduled(p))
      throw new UnrecoverableError(
        `NOT_FOUND: release ${releaseId} of ${appId} has no scheduled process ${process}`,
      );
    const target = targetFor(deps.targets, spec);
    if (!target.runScheduled)
      throw new UnrecoverableError(
        `UNAVAILABLE: target ${target.name} runs scheduled processes itself; norn has no tick to run`,
      );
    const secrets = await releaseSecrets(deps, release, spec);
    const result = await target.runScheduled({
      release: targetRelease(release, spec, secrets),
      process,
      runId: job.id ?? String(Date.now()),
      signal,
      timeoutMs: deps.timeoutMs,
      onLine: (line) => {
        job.log(line).catch(() => {});
      },
    });
    deps.log?.info(
      { appId, process, releaseId, jobId: job.id, exitCode: result.exitCode },
      'cron job finished',
    );
    if (result.exitCode !== 0) {
      throw new UnrecoverableError(
        `${appId}.${process} exited with ${result.exitCode}:\n${result.tail.join('\n')}`,
      );
    }
    return result;
  };
}
