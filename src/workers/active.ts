/** The steps a worker process is running, how a cancel or shutdown stops one, and their leases. */
import { describeDbError } from '../shared/db-retry.js';
import type { Logger } from '../shared/logger.js';
import type { RunStore } from '../shared/store/runs.js';

export type AbortReason = 'cancelled' | 'shutdown' | 'lease-lost';

/** Steps running in this process, by run id: how cancel broadcasts and shutdown reach them. */
export class ActiveSteps {
  private readonly byRun = new Map<string, AbortController>();
  add(runId: string, c: AbortController) {
    this.byRun.set(runId, c);
  }
  delete(runId: string) {
    this.byRun.delete(runId);
  }
  abort(runId: string, reason: AbortReason): boolean {
    const c = this.byRun.get(runId);
    if (!c || c.signal.aborted) return false;
    c.abort(reason);
    return true;
  }
  abortAll(reason: AbortReason) {
    for (const id of this.byRun.keys()) this.abort(id, reason);
  }
  get size() {
    return this.byRun.size;
  }

  /** Work that goes on after a step returned (the end of a run); shutdown waits for it. */
  private readonly trailing = new Set<Promise<unknown>>();
  track(work: Promise<unknown>): void {
    const p = work.finally(() => this.trailing.delete(p));
    this.trailing.add(p);
  }
  async settled(): Promise<void> {
    while (this.trailing.size) await Promise.allSettled([...this.trailing]);
  }
}

/**
 * Resolves with the handler's result, or, once `signal` aborts, waits at most `graceMs` for the
 * handler to stop and then rejects anyway: a handler that ignores its signal cannot hold a cancel.
 */
export function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal,
  graceMs: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(
        () =>
          reject(new Error(`step did not stop within ${graceMs} ms of ${String(signal.reason)}`)),
        graceMs,
      );
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) reject(new Error(String(signal.reason)));
        else resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export interface HeartbeatOptions {
  store: Pick<RunStore, 'heartbeat'>;
  runId: string;
  workerId: string;
  everyMs: number;
  /** Aborted with 'lease-lost' when another run holds the app. */
  controller: AbortController;
  /** The step's log. */
  note: (line: string) => void;
  log: Logger;
}

/**
 * Renews the run's lease every NORN_LEASE_HEARTBEAT_MS while a step runs; a refused renewal
 * (another run holds the app) aborts the step. A heartbeat PostgreSQL does not answer is retried by
 * the next one, and the step goes on: an outage shorter than the lease's life costs nothing, and a
 * longer one only lets the sweeper look (it renews a lease whose flow is still alive).
 */
export function startHeartbeat(o: HeartbeatOptions): NodeJS.Timeout {
  let failing = false;
  return setInterval(() => {
    o.store.heartbeat(o.runId, o.workerId).then(
      (held) => {
        if (failing) o.note('lease heartbeat: PostgreSQL answers again');
        failing = false;
        if (!held) o.controller.abort('lease-lost');
      },
      (err: unknown) => {
        if (!failing)
          o.note(
            `lease heartbeat failed: ${describeDbError(err)}; the step goes on, heartbeats keep trying`,
          );
        failing = true;
        o.log.warn({ err, runId: o.runId }, 'lease heartbeat failed');
      },
    );
  }, o.everyMs);
}
