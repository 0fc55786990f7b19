/**
 * The run store: typed calls of the norn_* state-machine functions (001_baseline.sql) plus the
 * read queries the api needs. Every transition is one round trip and returns the events it appended.
 */
import { inTransaction, type Db } from '../db.js';
import { NornError, type ErrorCode } from '../errors.js';
import type { EventEnvelope } from '../events.js';

export type RunStatus = 'queued' | 'running' | 'cancelling' | 'succeeded' | 'failed' | 'cancelled';
/**
 * What a request does when its scope is busy (runs.policy's CHECK): wait its turn, cancel what
 * runs and waits there, be refused, or (coalesce) be answered with the run of the same pipeline
 * already waiting.
 */
export const CONCURRENCY_POLICIES = ['queue', 'supersede', 'reject', 'coalesce'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];
/**
 * A step's status (run_steps.status's CHECK). RunStore.steps reports a step without a row as
 * pending, or not_run once its run has ended.
 */
export type StepStatus =
  'pending' | 'running' | 'complete' | 'failed' | 'skipped' | 'cancelled' | 'not_run';

/** What the state machine hands back about a run (norn_run_json). */
export interface RunRef {
  id: string;
  appId: string;
  sagaId: string;
  /** The key of its lease: one run per scope at a time (`app:<id>`, `drift:<app>` …). */
  scope: string;
  pipeline: string;
  version: string;
  eventPrefix: string;
  queue: string;
  steps: string[];
  status: RunStatus;
  params: Record<string, unknown>;
  /** The app spec pinned at request time. */
  spec?: Record<string, unknown>;
  /** The run this one resumes (its completed steps are reported skipped). */
  resumedFrom?: string | null;
}

/** A transition of a live run as Redis logged it: JSON text, `{"t":<n>,…}` (001_baseline.sql). */
export type LogEntry = string;

/** What a run's live state starts from for steps already done (a resumed run, or one reopened). */
export interface LiveSeed {
  step: string;
  state: 'skip' | 'complete' | 'skipped';
  output: unknown;
}

export interface RecordResult {
  /** The events appended, as JSON text (ready to publish), in order. */
  events: string[];
  /** Per run: its log is recorded up to this transition number (what may be trimmed from Redis). */
  recorded: Record<string, number>;
  /** Per run: the first transition number the batch lacked (later ones wait for it). */
  gaps: Record<string, number>;
}

/**
 * What a transition on a run answers instead of acting (norn_refusal): no such run, the run has
 * ended, or the run does not hold its scope's lease.
 */
export type Refusal =
  | { action: 'missing'; events?: undefined }
  | { action: 'finished'; status: RunStatus; events?: undefined }
  | { action: 'fenced'; events?: undefined };

/** The run ended (its app released): `next` is the run admitted in its place, if any. */
export interface RunEnded {
  action: 'ended';
  /** Absent when a queued run was cancelled (norn_step_fail). */
  status?: 'succeeded' | 'failed' | 'cancelled';
  events: EventEnvelope[];
  next?: RunRef | null;
}

/** norn_run_succeed: the live log held no finish of the last step ('incomplete'), or it ended. */
export type RunSucceedResult =
  | Refusal
  | { action: 'incomplete'; events: EventEnvelope[] }
  | (RunEnded & { status: 'succeeded' });

/** norn_step_fail: a failure BullMQ retries ('retry'), or the end of the run. */
export type StepFailResult = Refusal | { action: 'retry'; events: EventEnvelope[] } | RunEnded;

/** norn_request_cancel: a queued run ends at once; a running one is 'cancelling' until it stops. */
export type RequestCancelResult =
  | Refusal
  | (RunEnded & { status: 'cancelled' })
  | { action: 'cancelling'; status: 'cancelling'; run: RunRef; events?: undefined };

/** norn_finalizer_done: 'done' when the finalizer's result was recorded already. */
export type FinalizerDoneResult =
  | { action: 'missing'; events?: undefined }
  | { action: 'done'; events?: undefined }
  | { action: 'ok'; events: EventEnvelope[] };

/** What a state-machine function answers about a run (RunService.apply carries it out). */
export type Transition =
  RunSucceedResult | StepFailResult | RequestCancelResult | FinalizerDoneResult;
export type TransitionAction = Transition['action'];

export interface RequestRunInput {
  /** The run's id, also the `sagaId` of its events. */
  id: string;
  appId: string;
  scope: string;
  pipeline: string;
  version: string;
  eventPrefix: string;
  queue: string;
  steps: string[];
  params: Record<string, unknown>;
  policy: ConcurrencyPolicy;
  resumedFrom?: string;
  skip?: string[];
  requestedBy?: string;
  /** The app spec this run deploys (pinned at request time). */
  spec?: Record<string, unknown>;
  finalizer?: string;
  /** The life-cycle hooks its pipeline declares (the transitions make them due). */
  hooks?: string[];
}

/** norn_request_run (and a request racing the app's deletion: 'no-app'). */
export type RequestRunResult =
  | { action: 'no-app' }
  | { action: 'rejected'; busy: RunRef }
  | {
      action: 'coalesced';
      /** The run of this pipeline that already waited in the scope: the request's answer. */
      run: RunRef;
      position: number;
    }
  | {
      action: 'queued';
      run: RunRef;
      /** Runs of the scope ahead of this one. */
      position: number;
      events: EventEnvelope[];
      /** Active runs this one supersedes (now cancelling). */
      toCancel: RunRef[];
      /** The run admitted now (this one when the scope was free), or null. */
      next: RunRef | null;
    };

export interface StepRecord {
  index: number;
  name: string;
  status: StepStatus;
  attempts: number;
  error: string | null;
  errorCode: ErrorCode | null;
  worker: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
}

export interface RunRecord {
  id: string;
  appId: string;
  sagaId: string;
  scope: string;
  pipeline: string;
  pipelineVersion: string;
  status: RunStatus;
  policy: ConcurrencyPolicy;
  params: Record<string, unknown>;
  steps: string[];
  eventPrefix: string;
  queue: string;
  resumedFrom: string | null;
  requestedBy: string | null;
  hooks: string[];
  error: string | null;
  /** The code of the error that ended the run (src/shared/errors.ts), to group failures by. */
  errorCode: ErrorCode | null;
  failedStep: string | null;
  cancelReason: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Raised when a run is requested for a deleted app (001_baseline.sql). */
const DELETED_APP_SQLSTATE = 'NRN01';
/** Raised when a request names a scope whose runs belong to another app (001_baseline.sql). */
const FOREIGN_SCOPE_SQLSTATE = 'NRN02';

const RUN_COLUMNS = `id, app_id AS "appId", id AS "sagaId", scope, pipeline, pipeline_version AS "pipelineVersion",
  status, policy, params, steps, event_prefix AS "eventPrefix", queue_name AS queue, resumed_from AS "resumedFrom",
  requested_by AS "requestedBy", hooks, error, error_code AS "errorCode", failed_step AS "failedStep", cancel_reason AS "cancelReason",
  created_at AS "createdAt", started_at AS "startedAt", finished_at AS "finishedAt"`;

export class RunStore {
  constructor(
    private readonly db: Db,
    /** Identifies this process in leases ("who holds it"). */
    readonly holder: string,
    private readonly leaseTtlMs: number,
  ) {}

  private async call<T>(sql: string, args: unknown[]): Promise<T> {
    const { rows } = await this.db.query<{ r: T }>(sql, args);
    return rows[0]!.r;
  }

  requestRun(i: RequestRunInput): Promise<RequestRunResult> {
    return this.call<RequestRunResult>(
      'SELECT norn_request_run($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) AS r',
      [
        i.id,
        i.appId,
        i.scope,
        i.pipeline,
        i.version,
        i.eventPrefix,
        i.queue,
        i.steps,
        i.params,
        i.policy,
        i.resumedFrom ?? null,
        i.skip ?? [],
        i.requestedBy ?? null,
        this.holder,
        this.leaseTtlMs,
        JSON.stringify(i.spec ?? {}),
        i.finalizer ?? null,
        i.hooks ?? [],
      ],
    ).catch((err: { code?: string }) => {
      // Deleted while this request was on its way (001_baseline.sql): there is no app.
      if (err.code === DELETED_APP_SQLSTATE) return { action: 'no-app' as const };
      if (err.code === FOREIGN_SCOPE_SQLSTATE)
        throw new NornError('CONFLICT', `scope ${i.scope} belongs to another app's runs`);
      throw err;
    });
  }

  /** Admits the oldest queued run of a scope that no run holds (the sweeper's catch-up). */
  admit(scope: string): Promise<RunRef | null> {
    return this.call('SELECT norn_admit_scope($1,$2,$3) AS r', [
      scope,
      this.holder,
      this.leaseTtlMs,
    ]);
  }

  /**
   * Records live logs (src/queues/live.ts) of several runs in one transaction, each transition once
   * and in order. Returns the committed events as JSON text (ready to publish) and, per run, the
   * transition number recorded up to.
   */
  async record(
    batch: ReadonlyArray<{ runId: string; log: readonly LogEntry[] }>,
  ): Promise<RecordResult> {
    // The entries are JSON already: the batch is assembled as text, never parsed here.
    const body = `[${batch.map((b) => `{"run":${JSON.stringify(b.runId)},"log":${logArray(b.log)}}`).join(',')}]`;
    const { rows } = await this.db.query<{
      events: string[] | null;
      recorded: Record<string, number>;
      gaps: Record<string, number>;
    }>(
      `SELECT ARRAY(SELECT jsonb_array_elements(r -> 'events')::text) AS events, r -> 'recorded' AS recorded, r -> 'gaps' AS gaps
       FROM norn_record($1::jsonb, $2) AS r`,
      [body, this.leaseTtlMs],
    );
    return {
      events: rows[0]?.events ?? [],
      recorded: rows[0]?.recorded ?? {},
      gaps: rows[0]?.gaps ?? {},
    };
  }

  /**
   * Appends `<prefix>.progress {step, sagaId, ...payload}` for a step of a running run, after
   * recording `log` (the run's live log), so the event follows the step's start it belongs to.
   * Returns the committed events as JSON text (none when the run is no longer running).
   */
  async stepProgress(
    runId: string,
    log: readonly LogEntry[],
    step: string,
    payload: Record<string, unknown>,
  ): Promise<string[]> {
    const body = `[{"run":${JSON.stringify(runId)},"log":${logArray(log)}}]`;
    return inTransaction(this.db, async (c) => {
      // norn_record takes the app's row lock, which norn_append_event needs held.
      const recorded = await c.query<{ events: string[] | null }>(
        `SELECT ARRAY(SELECT jsonb_array_elements(r -> 'events')::text) AS events FROM norn_record($1::jsonb, $2) AS r`,
        [body, this.leaseTtlMs],
      );
      const appended = await c.query<{ j: string }>(
        `SELECT norn_append_event(d.app_id, d.id, d.event_prefix || '.progress',
                  jsonb_build_object('step', $2::text, 'sagaId', d.id) || $3::jsonb)::text AS j
         FROM runs d WHERE d.id = $1 AND d.status = 'running'`,
        [runId, step, JSON.stringify(payload)],
      );
      return [...(recorded.rows[0]?.events ?? []), ...appended.rows.map((r) => r.j)];
    });
  }

  /** The last step finished (its finish is in `log`): records the log and ends the run succeeded. */
  runSucceeded(
    runId: string,
    log: readonly LogEntry[],
    summary?: Record<string, unknown>,
  ): Promise<RunSucceedResult> {
    return this.call('SELECT norn_run_succeed($1,$2::jsonb,$3,$4,$5) AS r', [
      runId,
      logArray(log),
      summary ?? null,
      this.holder,
      this.leaseTtlMs,
    ]);
  }

  /** A step failed (or the run is being ended without one: step null). Records `log` first. */
  stepFail(
    runId: string,
    step: string | null,
    error: string,
    opts: { final: boolean; cancelled: boolean; durationMs?: number; code?: ErrorCode },
    log: readonly LogEntry[] = [],
  ): Promise<StepFailResult> {
    return this.call('SELECT norn_step_fail($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10) AS r', [
      runId,
      step,
      error,
      opts.final,
      opts.cancelled,
      opts.durationMs === undefined ? null : Math.round(opts.durationMs),
      this.holder,
      this.leaseTtlMs,
      logArray(log),
      opts.code ?? (opts.cancelled ? 'CANCELLED' : 'STEP_FAILED'),
    ]);
  }

  /**
   * What a run's live state starts from: the steps already done (or to report skipped), with their
   * outputs, and the number of the last transition PostgreSQL recorded (numbering goes on from it).
   */
  async liveSeed(runId: string): Promise<{ recorded: number; steps: LiveSeed[] }> {
    const { rows } = await this.db.query<{
      step: string;
      state: LiveSeed['state'];
      output: unknown;
    }>(
      `SELECT name AS step, CASE WHEN status IN ('complete', 'skipped') THEN status ELSE 'skip' END AS state, output
       FROM run_steps WHERE run_id = $1 AND (skip OR status IN ('complete', 'skipped')) ORDER BY idx`,
      [runId],
    );
    const run = await this.db.query<{ recorded: number }>(
      'SELECT recorded_tseq AS recorded FROM runs WHERE id = $1',
      [runId],
    );
    return { recorded: run.rows[0]?.recorded ?? 0, steps: rows };
  }

  /** Records how the finalizer of an ended run went (its step row and one event). */
  finalizerDone(
    runId: string,
    step: string,
    status: 'complete' | 'failed',
    output: unknown,
    error: string | null,
    durationMs: number,
  ): Promise<FinalizerDoneResult> {
    return this.call('SELECT norn_finalizer_done($1,$2,$3,$4,$5,$6) AS r', [
      runId,
      step,
      status,
      output === undefined ? null : JSON.stringify(output),
      error,
      Math.round(durationMs),
    ]);
  }

  /** What a finalizer needs to run outside the flow: the run's params, pinned spec and saga. */
  async runContext(runId: string): Promise<{
    params: Record<string, unknown>;
    spec: Record<string, unknown>;
    sagaId: string;
    finalizer: string | null;
    startedAt: string | null;
    queue: string;
    pipeline: string;
    version: string;
    appId: string;
    scope: string;
  } | null> {
    const { rows } = await this.db.query(
      `SELECT params, spec, id AS "sagaId", finalizer, started_at AS "startedAt", queue_name AS queue,
              pipeline, pipeline_version AS version, app_id AS "appId", scope FROM runs WHERE id = $1`,
      [runId],
    );
    return rows[0] ?? null;
  }

  requestCancel(runId: string, reason: string): Promise<RequestCancelResult> {
    return this.call('SELECT norn_request_cancel($1,$2) AS r', [runId, reason]);
  }

  /** Extends the lease while a step runs; false means the run no longer holds its scope (fenced). */
  async heartbeat(runId: string, worker: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE leases SET heartbeat_at = clock_timestamp(), holder = $2,
         expires_at = clock_timestamp() + make_interval(secs => $3::int / 1000.0)
       WHERE run_id = $1`,
      [runId, worker, this.leaseTtlMs],
    );
    return rowCount === 1;
  }

  /** Renews an expired lease on behalf of a run that is still alive in the queue. */
  async renewExpired(runId: string): Promise<void> {
    await this.db.query(
      `UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $2::int / 1000.0)
       WHERE run_id = $1`,
      [runId, this.leaseTtlMs],
    );
  }

  async outputs(runId: string): Promise<Record<string, unknown>> {
    const { rows } = await this.db.query<{ name: string; output: unknown }>(
      `SELECT name, output FROM run_steps WHERE run_id = $1 AND status IN ('complete', 'skipped') ORDER BY idx`,
      [runId],
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.output ?? null]));
  }

  async getRun(id: string): Promise<RunRecord | null> {
    if (!isUuid(id)) return null;
    const { rows } = await this.db.query<RunRecord>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1`,
      [id],
    );
    return rows[0] ?? null;
  }

  async getRunBySaga(sagaId: string): Promise<RunRecord | null> {
    if (!isUuid(sagaId)) return null;
    const { rows } = await this.db.query<RunRecord>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1`,
      [sagaId],
    );
    return rows[0] ?? null;
  }

  async listRuns(appId: string, limit = 20): Promise<RunRecord[]> {
    const { rows } = await this.db.query<RunRecord>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE app_id = $1 ORDER BY request_seq DESC LIMIT $2`,
      [appId, limit],
    );
    return rows;
  }

  /** The runs of one scope, newest first (a stack's runs: scope `stack:<id>`). */
  async listRunsInScope(scope: string, limit = 20): Promise<RunRecord[]> {
    const { rows } = await this.db.query<RunRecord>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE scope = $1 ORDER BY request_seq DESC LIMIT $2`,
      [scope, limit],
    );
    return rows;
  }

  /**
   * Every step of a run in order. A step gets its row when it first does something (its start is
   * recorded, or it is to be reported skipped); until then it is pending, and not_run once the run
   * has ended.
   */
  async steps(runId: string): Promise<StepRecord[]> {
    if (!isUuid(runId)) return [];
    const { rows } = await this.db.query<StepRecord>(
      `SELECT (s.ord - 1)::integer AS index, s.name,
              coalesce(ds.status, CASE WHEN d.status IN ('succeeded', 'failed', 'cancelled') THEN 'not_run' ELSE 'pending' END) AS status,
              coalesce(ds.attempts, 0) AS attempts, ds.error, ds.error_code AS "errorCode", ds.worker, ds.started_at AS "startedAt",
              ds.finished_at AS "finishedAt", ds.duration_ms AS "durationMs"
       FROM runs d CROSS JOIN LATERAL unnest(d.steps) WITH ORDINALITY AS s (name, ord)
       LEFT JOIN run_steps ds ON ds.run_id = d.id AND ds.idx = s.ord - 1
       WHERE d.id = $1 ORDER BY s.ord`,
      [runId],
    );
    return rows;
  }

  /** A run's life-cycle hooks that have come due, and how each went. */
  async hooks(runId: string): Promise<HookRecord[]> {
    if (!isUuid(runId)) return [];
    const { rows } = await this.db.query<HookRecord>(
      `SELECT hook, status, attempts, error, due_at AS "dueAt", finished_at AS "finishedAt"
       FROM run_hooks WHERE run_id = $1 ORDER BY created_at, hook`,
      [runId],
    );
    return rows;
  }

  /** Records that a hook threw: due again after `retryMs`, or (final) failed and reported. */
  hookFailed(
    runId: string,
    hook: string,
    error: string,
    final: boolean,
    retryMs: number,
  ): Promise<{ action: 'missing' | 'done' | 'retry' | 'failed'; events?: EventEnvelope[] }> {
    return this.call('SELECT norn_hook_failed($1,$2,$3,$4,$5) AS r', [
      runId,
      hook,
      error,
      final,
      Math.round(retryMs),
    ]);
  }

  /** Who holds a scope (its run, worker and lease expiry) and what waits there, in run order. */
  async scopeView(scope: string): Promise<ScopeView> {
    const lease = await this.db.query<ScopeHolder>(
      `SELECT l.run_id AS "runId", l.run_id AS "deploymentId", l.holder, l.acquired_at AS "acquiredAt",
              l.heartbeat_at AS "heartbeatAt", l.expires_at AS "expiresAt", d.status, d.pipeline
       FROM leases l JOIN runs d ON d.id = l.run_id WHERE l.scope = $1`,
      [scope],
    );
    const waiting = await this.db.query<ScopeView['waiting'][number]>(
      `SELECT id AS "runId", id AS "deploymentId", id AS "sagaId", pipeline, params, created_at AS "requestedAt"
       FROM runs WHERE scope = $1 AND status = 'queued' ORDER BY request_seq`,
      [scope],
    );
    return { scope, holder: lease.rows[0] ?? null, waiting: waiting.rows };
  }

  /** Every scope of an app that is held or has runs waiting, `app:<id>` first. */
  async appScopes(appId: string): Promise<ScopeView[]> {
    const { rows } = await this.db.query<{ scope: string }>(
      `SELECT scope FROM leases WHERE app_id = $1
       UNION SELECT scope FROM runs WHERE app_id = $1 AND status = 'queued'`,
      [appId],
    );
    const scopes = rows
      .map((r) => r.scope)
      .sort((a, b) => (a === `app:${appId}` ? -1 : a < b ? -1 : 1));
    return Promise.all(scopes.map((s) => this.scopeView(s)));
  }

  // ---- sweeper queries -------------------------------------------------------------------------

  async expiredLeases(): Promise<RunRef[]> {
    const { rows } = await this.db.query<{ r: RunRef }>(
      `SELECT norn_run_json(d) AS r FROM leases l JOIN runs d ON d.id = l.run_id
       WHERE l.expires_at < clock_timestamp()`,
    );
    return rows.map((x) => x.r);
  }

  async stuckCancels(olderThanMs: number): Promise<RunRef[]> {
    const { rows } = await this.db.query<{ r: RunRef }>(
      `SELECT norn_run_json(d) AS r FROM runs d WHERE status = 'cancelling'
       AND cancel_requested_at < clock_timestamp() - make_interval(secs => $1::int / 1000.0)`,
      [olderThanMs],
    );
    return rows.map((x) => x.r);
  }

  /** Scopes with queued runs and no holder (a run ended but its successor was not admitted). */
  async scopesWaitingForAdmission(): Promise<string[]> {
    const { rows } = await this.db.query<{ scope: string }>(
      `SELECT DISTINCT d.scope FROM runs d WHERE d.status = 'queued'
       AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.scope = d.scope)`,
    );
    return rows.map((r) => r.scope);
  }

  /** The run, if it is running and holds its scope's lease (what may carry on with live state), else null. */
  async leasedRun(runId: string): Promise<RunRef | null> {
    if (!isUuid(runId)) return null;
    const { rows } = await this.db.query<{ r: RunRef }>(
      `SELECT norn_run_json(d) AS r FROM runs d JOIN leases l ON l.run_id = d.id
       WHERE d.id = $1 AND d.status = 'running'`,
      [runId],
    );
    return rows[0]?.r ?? null;
  }

  /** True when no step of the run has started yet (its flow may never have been added). */
  async notStarted(runId: string): Promise<boolean> {
    const { rows } = await this.db.query(
      `SELECT 1 FROM run_steps WHERE run_id = $1 AND status <> 'pending' LIMIT 1`,
      [runId],
    );
    return rows.length === 0;
  }
}

export interface HookRecord {
  hook: string;
  status: 'pending' | 'done' | 'failed';
  attempts: number;
  error: string | null;
  dueAt: string;
  finishedAt: string | null;
}

export interface ScopeHolder {
  runId: string;
  /** The run id under its earlier name. */
  deploymentId: string;
  holder: string;
  acquiredAt: string;
  heartbeatAt: string;
  expiresAt: string;
  status: RunStatus;
  pipeline: string;
}

export interface ScopeView {
  scope: string;
  holder: ScopeHolder | null;
  waiting: Array<{
    runId: string;
    deploymentId: string;
    sagaId: string;
    pipeline: string;
    params: Record<string, unknown>;
    requestedAt: string;
  }>;
}

/** A live log as a JSON array, from entries that are JSON text already (never parsed here). */
const logArray = (log: readonly LogEntry[]) => `[${log.join(',')}]`;

export const isUuid = (s: string) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
