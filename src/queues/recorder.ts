/**
 * Records live step transitions in PostgreSQL off the steps' critical path. A worker hands over
 * the live log a transition returned (src/queues/live.ts); the recorder writes whatever has
 * accumulated in one transaction (norn_record), publishes the committed events, and trims what it
 * recorded from Redis. One write is in flight per process, after a short gathering delay
 * (NORN_RECORD_DELAY_MS): under load a write carries the transitions of many steps and runs.
 *
 * Nothing depends on this process surviving: until PostgreSQL records a transition it stays in the
 * run's live log, and every later transition of the run (or the run's end) carries it again.
 */
import { systemClock, systemTimer, type Clock, type Timer } from '../shared/clock.js';
import { describeDbError } from '../shared/db-retry.js';
import type { Logger } from '../shared/logger.js';
import type { LogEntry, RunStore } from '../shared/store/runs.js';
import type { EventBus } from './bus.js';
import { entryNumber, type LiveRuns } from './live.js';

export interface RecorderDeps {
  store: Pick<RunStore, 'record' | 'stepProgress'>;
  live: Pick<LiveRuns, 'trimMany' | 'pending'>;
  bus: Pick<EventBus, 'publishText'>;
  log: Logger;
  /** How long transitions gather before a write (0: the next turn of the event loop). */
  delayMs: number;
  /** After a failed write, how long to wait before trying again (default 1 s), doubling to 10x. */
  retryMs?: number;
  /** Reads the time (how long an outage of the writes lasted); Date.now by default. */
  clock?: Clock;
  /** Waits: the gathering delay and the retry after a failed write; setTimeout by default. */
  timer?: Timer;
}

const MAX_GAP_REFILLS = 20;

export class Recorder {
  /** Per run: its unrecorded entries by transition number. */
  private pending = new Map<string, Map<number, LogEntry>>();
  private writing: Promise<void> | undefined;
  /** Cancels the pending retry after a failed write. */
  private retry: (() => void) | undefined;
  private closed = false;
  /** Writes failed in a row (a PostgreSQL outage): the retry delay grows with them. */
  private failures = 0;
  /** When the first of those failures happened. */
  private failingSince = 0;
  private readonly clock: Clock;
  private readonly timer: Timer;
  /** Runs whose last writes found a gap, and how many times in a row. */
  private readonly gapRefills = new Map<string, number>();
  /** Per run: its last progress event's write (the next waits for it: events keep their order). */
  private readonly progressing = new Map<string, Promise<void>>();

  constructor(private readonly deps: RecorderDeps) {
    this.clock = deps.clock ?? systemClock;
    this.timer = deps.timer ?? systemTimer;
  }

  /** Takes a run's live log (as a transition returned it) to record soon. */
  push(runId: string, log: readonly LogEntry[]): void {
    if (!log.length) return;
    let entries = this.pending.get(runId);
    if (!entries) this.pending.set(runId, (entries = new Map()));
    for (const e of log) entries.set(entryNumber(e), e);
    this.kick();
  }

  /**
   * Appends a step's progress event (`<prefix>.progress`, e.g. a rollout's ready replicas) and
   * publishes it. The run's live log is recorded with it, so the event never precedes the step's
   * start. Informational: a failure is logged, never the step's; events of one run keep order.
   */
  progress(runId: string, step: string, payload: Record<string, unknown>): Promise<void> {
    const { store, live, bus, log } = this.deps;
    const prior = this.progressing.get(runId) ?? Promise.resolve();
    const next = prior
      .then(async () => {
        const events = await store.stepProgress(runId, await live.pending(runId), step, payload);
        await bus.publishText(events);
      })
      .catch((err) => log.warn({ err, runId, step }, 'recording a progress event failed'))
      .finally(() => {
        if (this.progressing.get(runId) === next) this.progressing.delete(runId);
      });
    this.progressing.set(runId, next);
    return next;
  }

  /**
   * Resolves once the run's progress events reported so far are written (or given up): a step's
   * end is recorded after them, so no progress event of a step follows its completion.
   */
  settled(runId: string): Promise<void> {
    return this.progressing.get(runId) ?? Promise.resolve();
  }

  /** Forgets what is pending for a run whose end recorded its log (PostgreSQL would skip it anyway). */
  forget(runId: string): void {
    this.pending.delete(runId);
    this.gapRefills.delete(runId);
  }

  private kick(): void {
    if (this.writing || this.retry || this.closed) return;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
      if (this.pending.size && !this.retry) this.kick();
    });
  }

  private async write(): Promise<void> {
    // Let the transitions of the next few milliseconds join the batch: under load one write
    // carries many, and a short run's end (which records its log itself) often leaves none.
    await new Promise<void>((r) => this.timer(this.deps.delayMs, r));
    const batch = this.pending;
    this.pending = new Map();
    if (!batch.size) return;
    const { store, live, bus, log } = this.deps;
    try {
      const { events, recorded, gaps } = await store.record(
        [...batch].map(([runId, entries]) => ({ runId, log: [...entries.values()] })),
      );
      if (this.failures)
        log.info(
          { failures: this.failures, outageMs: this.clock() - this.failingSince },
          'recording step transitions again',
        );
      this.failures = 0;
      // Committed: publish (a relay that misses one reads it from PostgreSQL) and trim Redis.
      bus
        .publishText(events)
        .catch((err) => log.warn({ err }, 'publishing recorded events failed'));
      live
        .trimMany(Object.entries(recorded).filter(([, upto]) => upto > 0))
        .catch((err) => log.warn({ err }, 'trimming live logs failed'));
      // A transition of another worker's has not reached PostgreSQL yet (it is on its way, or that
      // worker died): what this batch had after it waits. Take the whole live log to record them.
      for (const runId of batch.keys()) if (!(runId in gaps)) this.gapRefills.delete(runId);
      for (const runId of Object.keys(gaps)) this.refill(runId);
    } catch (err) {
      // Nothing is lost (the entries are still in Redis too); keep them and try again shortly.
      for (const [runId, entries] of batch) {
        const now = this.pending.get(runId);
        if (!now) this.pending.set(runId, entries);
        else for (const [t, e] of entries) if (!now.has(t)) now.set(t, e);
      }
      // Nothing waits on these writes (a run's end records its log itself), so an outage of any
      // length is ridden out; the delay only keeps a dead server from being asked every second.
      const base = this.deps.retryMs ?? 1_000;
      if (!this.failures) this.failingSince = this.clock();
      const delay = Math.min(base * 2 ** this.failures++, base * 10);
      log.warn(
        { err, runs: batch.size, retryInMs: delay },
        `recording step transitions failed (${describeDbError(err)}); retrying`,
      );
      this.retry = this.timer(
        delay,
        () => {
          this.retry = undefined;
          this.kick();
        },
        { unref: true },
      );
    }
  }

  private refill(runId: string): void {
    const n = (this.gapRefills.get(runId) ?? 0) + 1;
    this.gapRefills.set(runId, n);
    if (n > MAX_GAP_REFILLS) {
      // Redis lacks the missing transition (it should never): the run's end records what it can.
      this.gapRefills.delete(runId);
      this.deps.log.warn(
        { runId },
        'a transition is missing from the live log; later ones wait for the end of the run',
      );
      return;
    }
    this.deps.live
      .pending(runId)
      .then((log) => this.push(runId, log))
      .catch((err) => this.deps.log.warn({ err, runId }, 'reading the live log failed'));
  }

  private cancelRetry(): void {
    this.retry?.();
    this.retry = undefined;
  }

  /** Writes what is pending (one attempt), then stops taking work. */
  async close(): Promise<void> {
    this.cancelRetry();
    await Promise.all(this.progressing.values());
    await this.writing;
    if (this.pending.size) {
      this.kick();
      await this.writing;
    }
    this.closed = true;
    this.cancelRetry();
  }
}
