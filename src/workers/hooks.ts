/**
 * Runs the life-cycle hooks of runs (onStart, onSucceed, onFail, onCancel) exactly once each.
 *
 * A hook's row is written by the transition that makes it due (001_baseline.sql, norn_hook_due),
 * so it cannot be lost. A worker claims one due row (FOR UPDATE SKIP LOCKED: two workers never run
 * one hook at once), runs the hook inside that transaction and marks it done there: what the hook
 * writes through `ctx.tx` commits together with the mark, exactly once. A worker killed mid-hook
 * leaves nothing (PostgreSQL rolls its transaction back and frees the row) and the next worker
 * runs the hook again. A hook that throws or times out is rolled back too, retried with backoff,
 * and after its last attempt marked failed and reported as `<prefix>.hook_failed`.
 */
import type { PoolClient } from 'pg';
import type { Db } from '../shared/db.js';
import { describeDbError } from '../shared/db-retry.js';
import { toError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { RunStore } from '../shared/store/runs.js';
import type { EventBus } from '../queues/bus.js';
import type { HookContext, HookName, PipelineRegistry } from '../queues/pipeline.js';
import { describe } from './step-context.js';

export interface HookRunnerDeps<S> {
  db: Db;
  store: RunStore;
  bus: EventBus;
  registry: PipelineRegistry<S>;
  services: S;
  log: Logger;
  /** NORN_HOOK_*: poll interval, attempts, first backoff, timeout of one try. */
  pollMs: number;
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
}

interface Due {
  hook: HookName;
  attempts: number;
  run: HookContext['run'];
}

/** Due hooks first by due time; an end hook only once its run's onStart is no longer pending. */
const CLAIM = `
  SELECT h.hook, h.attempts,
         json_build_object('id', r.id, 'appId', r.app_id, 'scope', r.scope, 'pipeline', r.pipeline,
           'version', r.pipeline_version, 'params', r.params, 'spec', r.spec, 'status', r.status,
           'error', r.error, 'started', r.started_at IS NOT NULL) AS run
  FROM run_hooks h JOIN runs r ON r.id = h.run_id
  WHERE h.status = 'pending' AND h.due_at <= clock_timestamp()
    AND (h.hook = 'onStart' OR NOT EXISTS (
      SELECT 1 FROM run_hooks s WHERE s.run_id = h.run_id AND s.hook = 'onStart' AND s.status = 'pending'))
  ORDER BY h.due_at LIMIT 1
  FOR UPDATE OF h SKIP LOCKED`;

export class HookRunner<S = unknown> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly stop = new AbortController();

  constructor(private readonly deps: HookRunnerDeps<S>) {}

  /** Polls every `pollMs` (and whenever nudged) until closed. */
  start(): void {
    this.schedule(0);
  }

  /** Looks for due hooks now (e.g. right after a transition that made one due). */
  nudge(): void {
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.runDue()
        .then(() => undefined)
        .catch((err) =>
          this.deps.log.warn({ err }, `running hooks failed: ${describeDbError(err)}`),
        )
        .finally(() => {
          this.running = undefined;
          const now = this.again;
          this.again = false;
          this.schedule(now ? 0 : this.deps.pollMs);
        });
    }, ms);
  }

  /** Runs due hooks one after another until none is due (or `limit` ran); returns how many ran. */
  async runDue(limit = 50): Promise<number> {
    let ran = 0;
    while (ran < limit && !this.closed && (await this.runOne())) ran++;
    return ran;
  }

  /** Claims and runs one due hook; false when none was due. */
  async runOne(): Promise<boolean> {
    const client = await this.deps.db.connect();
    let due: Due | undefined;
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      due = (await client.query<Due>(CLAIM)).rows[0];
      if (!due) {
        await client.query('COMMIT');
        return false;
      }
      const emitted = await this.invoke(client, due);
      await client.query(
        `UPDATE run_hooks SET status = 'done', attempts = attempts + 1, error = NULL,
           finished_at = clock_timestamp() WHERE run_id = $1 AND hook = $2`,
        [due.run.id, due.hook],
      );
      await client.query('COMMIT');
      this.deps.log.info({ runId: due.run.id, hook: due.hook }, 'hook done');
      // Appended with the hook's writes; published once they are committed.
      if (emitted.length)
        this.deps.bus
          .publishText(emitted)
          .catch((e) => this.deps.log.warn({ err: e }, 'publishing events failed'));
      return true;
    } catch (err) {
      broken = toError(err);
      await client.query('ROLLBACK').catch(() => {});
      if (!due) throw err;
      // A shutdown is not the hook's fault: it stays due, untried, for the next worker.
      if (!this.closed) await this.failed(due, broken);
      return true;
    } finally {
      // After a failure the hook may still hold the connection (a timed-out hook keeps running):
      // it is discarded, so nothing it sends later can land in another transaction.
      client.release(broken);
    }
  }

  /** Runs the hook in `client`'s transaction; returns the events it emitted (JSON text). */
  private async invoke(client: PoolClient, due: Due): Promise<string[]> {
    const def = this.deps.registry.get(due.run.pipeline, due.run.version);
    const hook = def.hooks?.[due.hook];
    if (!hook)
      throw new Error(
        `pipeline ${def.name}@${def.version} of this worker has no ${due.hook} hook, which the run was requested with`,
      );
    const timeout = new AbortController();
    const signal = AbortSignal.any([timeout.signal, this.stop.signal]);
    const timer = setTimeout(
      () => timeout.abort(new Error(`timed out after ${this.deps.timeoutMs} ms`)),
      this.deps.timeoutMs,
    );
    const aborted = new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(toError(signal.reason)), { once: true }),
    );
    aborted.catch(() => {});
    try {
      const emitted: string[] = [];
      const ctx: HookContext = {
        hook: due.hook,
        run: due.run,
        attempt: due.attempts + 1,
        tx: client,
        signal,
        log: (line) => this.deps.log.info({ runId: due.run.id, hook: due.hook }, line),
        async emit(type, payload) {
          const { rows } = await client.query<{ e: string }>(
            'SELECT norn_append_event($1, $2, $3, $4::jsonb)::text AS e',
            [due.run.appId, due.run.id, type, JSON.stringify(payload)],
          );
          emitted.push(rows[0]!.e);
        },
      };
      await Promise.race([hook.call(def.hooks, ctx, this.deps.services), aborted]);
      return emitted;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Rolled back already: count the attempt, and report it when it was the last. */
  private async failed(due: Due, err: Error): Promise<void> {
    const attempt = due.attempts + 1;
    const final = attempt >= this.deps.attempts;
    const retryMs = Math.min(60_000, this.deps.backoffMs * 2 ** due.attempts);
    const message = describe(err);
    this.deps.log.warn(
      { runId: due.run.id, hook: due.hook, attempt, final, err },
      final ? 'hook failed for the last time' : `hook failed; retrying in ${retryMs} ms`,
    );
    const t = await this.deps.store.hookFailed(due.run.id, due.hook, message, final, retryMs);
    if (t.events?.length)
      this.deps.bus
        .publish(t.events)
        .catch((e) => this.deps.log.warn({ err: e }, 'publishing events failed'));
  }

  /** Stops polling; a hook still running is aborted (rolled back, so it runs again elsewhere). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.stop.abort(new Error('the worker is shutting down'));
    await this.running;
  }
}
