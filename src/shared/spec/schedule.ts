/**
 * Schedules of scheduled processes, checked by the code that runs them: BullMQ's own repeat
 * strategy (`defaultRepeatStrategy`, cron-parser underneath), called with the pattern and time zone
 * the scheduler is given (`schedulerRepeat`). A schedule is accepted only if that code finds a next
 * run within SCHEDULE_HORIZON_MS; otherwise BullMQ would refuse it at deploy, or silently never run
 * it (its strategy returns nothing for, e.g., `0 0 31 4,6 *`).
 */
import { defaultRepeatStrategy } from 'bullmq';
import { checkedText, shortText } from './fields.js';

/** The zone a schedule without `timezone` runs in. */
export const DEFAULT_TIME_ZONE = 'UTC';

/**
 * Long enough for every real schedule: `0 0 29 2 *` waits at most 8 years (2096 → 2104, as 2100 is
 * no leap year). Bounding the search also keeps a never-firing pattern from costing seconds.
 */
export const SCHEDULE_HORIZON_MS = 8 * 366 * 24 * 3_600_000;

/** The repeat options norn gives BullMQ's `upsertJobScheduler` for a scheduled process. */
export function schedulerRepeat(
  schedule: string,
  timezone: string | undefined,
): { pattern: string; tz: string } {
  return { pattern: schedule, tz: timezone ?? DEFAULT_TIME_ZONE };
}

/** The scheduler's next run after `now`: undefined if none in the horizon; throws if refused. */
function nextRun(pattern: string, tz: string, now: number): number | undefined {
  const next = defaultRepeatStrategy(now, {
    ...schedulerRepeat(pattern, tz),
    endDate: now + SCHEDULE_HORIZON_MS,
  });
  return typeof next === 'number' && Number.isFinite(next) ? next : undefined;
}

export interface ScheduleProblem {
  field: 'schedule' | 'timezone';
  message: string;
}

/**
 * Why the scheduler would refuse or never run `schedule` in `timezone`, or undefined. Besides what
 * the scheduler refuses, norn wants 5 or 6 fields (or a macro such as @daily): cron-parser reads
 * `* * *` as a complete pattern, which is almost always a typo.
 */
export function scheduleProblem(
  schedule: string,
  timezone: string | undefined,
  now = Date.now(),
): ScheduleProblem | undefined {
  const fields = schedule.trim().split(/\s+/).filter(Boolean);
  if (!schedule.trim().startsWith('@') && fields.length !== 5 && fields.length !== 6) {
    return {
      field: 'schedule',
      message: `must be a cron expression with 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first); it has ${fields.length}`,
    };
  }
  const tz = schedulerRepeat(schedule, timezone).tz;
  try {
    if (nextRun(schedule, tz, now) !== undefined) return undefined;
    return {
      field: 'schedule',
      message:
        'never runs: the scheduler finds no matching time in the next 8 years (for example a day 31 in months that have 30 days)',
    };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (timezone !== undefined && !refused(schedule, now))
      return { field: 'timezone', message: `the scheduler cannot use this time zone (${why})` };
    const hint = /day of month/i.test(why)
      ? ' (that day never occurs in those months, so it would never run)'
      : '';
    return { field: 'schedule', message: `is refused by the scheduler: ${why}${hint}` };
  }
}

/** Whether the pattern alone (in the default zone) is refused. */
function refused(schedule: string, now: number): boolean {
  try {
    nextRun(schedule, DEFAULT_TIME_ZONE, now);
    return false;
  } catch {
    return true;
  }
}

/** Whether `zone` is an IANA time zone this runtime knows (the scheduler reads the same data). */
export function isTimeZone(zone: string): boolean {
  if (zone.trim() === '') return false;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Checked together with the time zone by the process rules (scheduleProblem). */
export const cronSchedule = shortText();

export const timeZone = checkedText((zone) =>
  isTimeZone(zone)
    ? undefined
    : `"${zone.slice(0, 60)}" is not a known IANA time zone (e.g. Europe/Paris, UTC)`,
);
