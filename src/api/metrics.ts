/**
 * GET /metrics in Prometheus' text format (prom-client). Everything is read when Prometheus
 * scrapes, from the fleet's shared truth (PostgreSQL's runs, steps, leases, deliveries, drift and
 * alerts; BullMQ's queues), so any api process answers for the whole fleet and a restarted one
 * loses nothing; only the WebSocket client count is this process's own.
 *
 * Counters (`_total`) are counts of rows that are never deleted, so they only grow. Durations are
 * histograms whose buckets are counted in SQL over the recorded steps and runs.
 */
import type { Queue } from 'bullmq';
import { Counter, Gauge, Registry, type MetricValue } from 'prom-client';
import type { Db } from '../shared/db.js';

export interface MetricsDeps {
  db: Pick<Db, 'query'>;
  queues: readonly Queue[];
  /** This process's /ws relay (absent: not serving /ws). */
  ws?: WsStats;
}

/** What /metrics reads from this process's /ws relay. */
export interface WsStats {
  /** Clients connected now. */
  clients(): number;
  /** Clients dropped since start because their send buffer passed NORN_WS_MAX_BUFFERED_BYTES. */
  slowDropped(): number;
}

const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'failed',
  'prioritized',
  'waiting-children',
] as const;
/** Seconds: from a no-op step (ms) to a slow build or a long healthy wait (30 min). */
export const DURATION_BUCKETS = [
  0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
];

type Rows<T> = Promise<{ rows: T[] }>;

/**
 * A histogram whose buckets are counted elsewhere (in SQL): prom-client's own Histogram only
 * observes, so this metric answers `get()` itself, in the shape the registry renders.
 */
class CountedHistogram {
  readonly aggregator = 'sum' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Promise<
      Array<{ labels: Record<string, string>; buckets: number[]; count: number; sum: number }>
    >,
  ) {}
  get type() {
    return 'histogram' as const;
  }
  async get() {
    const values: Array<MetricValue<string> & { metricName: string }> = [];
    for (const h of await this.read()) {
      DURATION_BUCKETS.forEach((le, i) =>
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { ...h.labels, le },
          value: h.buckets[i] ?? 0,
        }),
      );
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { ...h.labels, le: '+Inf' },
        value: h.count,
      });
      values.push({ metricName: `${this.name}_sum`, labels: h.labels, value: h.sum });
      values.push({ metricName: `${this.name}_count`, labels: h.labels, value: h.count });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }
  reset() {}
}

/** SQL counting `seconds` (an expression) into DURATION_BUCKETS: `b0 … bN, count, sum`. */
const bucketColumns = (seconds: string) =>
  [
    ...DURATION_BUCKETS.map(
      (le, i) => `count(*) FILTER (WHERE ${seconds} <= ${le})::float8 AS b${i}`,
    ),
    'count(*)::float8 AS count',
    `coalesce(sum(${seconds}), 0)::float8 AS sum`,
  ].join(', ');

const histogramRows = (rows: Array<Record<string, unknown>>, labels: string[]) =>
  rows.map((r) => ({
    labels: Object.fromEntries(labels.map((l) => [l, String(r[l])])),
    buckets: DURATION_BUCKETS.map((_, i) => Number(r[`b${i}`])),
    count: Number(r.count),
    sum: Number(r.sum),
  }));

export function createMetrics(deps: MetricsDeps): Registry {
  const registry = new Registry();
  const q = <T>(sql: string): Rows<T> => deps.db.query(sql) as unknown as Rows<T>;

  /** A gauge or counter set afresh from `read` on every scrape. */
  const collected = <L extends string>(
    Kind: typeof Gauge | typeof Counter,
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => Promise<Array<{ labels: Record<L, string>; value: number }>>,
  ) =>
    new Kind({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const metric = this as unknown as Gauge<L>;
        metric.reset();
        for (const { labels, value } of await read())
          if (Kind === Gauge) metric.set(labels, value);
          else (this as unknown as Counter<L>).inc(labels, value);
      },
    });

  collected(
    Gauge,
    'norn_queue_jobs',
    'BullMQ jobs per queue and state.',
    ['queue', 'state'],
    async () =>
      (
        await Promise.all(
          deps.queues.map(async (queue) => {
            const counts = await queue.getJobCounts(...QUEUE_STATES);
            return QUEUE_STATES.map((state) => ({
              labels: { queue: queue.name, state },
              value: counts[state] ?? 0,
            }));
          }),
        )
      ).flat(),
  );

  collected(
    Counter,
    'norn_run_outcomes_total',
    'Runs that ended, per pipeline and outcome (succeeded, failed, cancelled).',
    ['pipeline', 'outcome'],
    async () =>
      (
        await q<{ pipeline: string; status: string; n: number }>(
          `SELECT pipeline, status, count(*)::int AS n FROM runs
           WHERE status IN ('succeeded', 'failed', 'cancelled') GROUP BY 1, 2`,
        )
      ).rows.map((r) => ({ labels: { pipeline: r.pipeline, outcome: r.status }, value: r.n })),
  );

  collected(
    Gauge,
    'norn_runs',
    'Runs not ended yet, per pipeline and status (queued, running, cancelling).',
    ['pipeline', 'status'],
    async () =>
      (
        await q<{ pipeline: string; status: string; n: number }>(
          `SELECT pipeline, status, count(*)::int AS n FROM runs
           WHERE status IN ('queued', 'running', 'cancelling') GROUP BY 1, 2`,
        )
      ).rows.map((r) => ({ labels: { pipeline: r.pipeline, status: r.status }, value: r.n })),
  );

  collected(
    Gauge,
    'norn_scope_waiting_runs',
    'Runs queued behind the run holding their scope, per scope.',
    ['scope'],
    async () =>
      (
        await q<{ scope: string; n: number }>(
          `SELECT scope, count(*)::int AS n FROM runs WHERE status = 'queued' GROUP BY 1`,
        )
      ).rows.map((r) => ({ labels: { scope: r.scope }, value: r.n })),
  );

  collected(
    Gauge,
    'norn_stuck_runs',
    'Runs whose scope lease expired and that the sweeper has not recovered yet (a worker died).',
    [],
    async () => [
      {
        labels: {},
        value: (
          await q<{ n: number }>(
            `SELECT count(*)::int AS n FROM leases WHERE expires_at < clock_timestamp()`,
          )
        ).rows[0]!.n,
      },
    ],
  );

  collected(
    Gauge,
    'norn_ws_clients',
    'WebSocket clients connected to this api process.',
    [],
    async () => [{ labels: {}, value: deps.ws?.clients() ?? 0 }],
  );

  collected(
    Counter,
    'norn_ws_slow_clients_dropped_total',
    'WebSocket clients this api process dropped because they fell NORN_WS_MAX_BUFFERED_BYTES behind.',
    [],
    async () => [{ labels: {}, value: deps.ws?.slowDropped() ?? 0 }],
  );

  collected(
    Counter,
    'norn_webhook_deliveries_total',
    'Verified webhook deliveries, per forge and outcome (started, ignored, failed, received).',
    ['provider', 'outcome'],
    async () =>
      (
        await q<{ provider: string; outcome: string; n: number }>(
          'SELECT provider, outcome, count(*)::int AS n FROM webhook_deliveries GROUP BY 1, 2',
        )
      ).rows.map((r) => ({ labels: { provider: r.provider, outcome: r.outcome }, value: r.n })),
  );

  collected(
    Counter,
    'norn_webhook_refusals_total',
    'Webhook deliveries refused (unsigned, bad-signature, no-secret, too-large, malformed), per forge.',
    ['provider', 'reason'],
    async () =>
      (
        await q<{ provider: string; reason: string; n: number }>(
          'SELECT provider, reason, count::int AS n FROM webhook_refusals',
        )
      ).rows.map((r) => ({ labels: { provider: r.provider, reason: r.reason }, value: r.n })),
  );

  collected(
    Gauge,
    'norn_drift_status',
    'The last drift finding per stack or app: 1 for its status (clean, drifted, unknown), 0 otherwise; norn_drift_error is 1 when the last check erred.',
    ['subject', 'status'],
    async () =>
      (
        await q<{ subject: string; status: string }>('SELECT subject, status FROM drift_state')
      ).rows.flatMap((r) =>
        ['clean', 'drifted', 'unknown'].map((status) => ({
          labels: { subject: r.subject, status },
          value: r.status === status ? 1 : 0,
        })),
      ),
  );

  collected(
    Gauge,
    'norn_drift_error',
    "1 when a subject's last drift check erred (its finding is the one before).",
    ['subject'],
    async () =>
      (
        await q<{ subject: string; erred: boolean }>(
          `SELECT subject, (error_at IS NOT NULL AND error_at >= checked_at) AS erred FROM drift_state`,
        )
      ).rows.map((r) => ({ labels: { subject: r.subject }, value: r.erred ? 1 : 0 })),
  );

  collected(
    Counter,
    'norn_alert_deliveries_total',
    'Alert deliveries per kind and result (ok, failed), one per alert and endpoint.',
    ['kind', 'status'],
    async () =>
      (
        await q<{ kind: string; status: string; n: number }>(
          'SELECT kind, status, count(*)::int AS n FROM alert_deliveries GROUP BY 1, 2',
        )
      ).rows.map((r) => ({ labels: { kind: r.kind, status: r.status }, value: r.n })),
  );

  registry.registerMetric(
    new CountedHistogram(
      'norn_step_duration_seconds',
      'How long steps took, per pipeline and step (completed and failed ones).',
      async () =>
        histogramRows(
          (
            await q<Record<string, unknown>>(
              `SELECT r.pipeline, s.name AS step, ${bucketColumns('s.duration_ms / 1000.0')}
               FROM run_steps s JOIN runs r ON r.id = s.run_id
               WHERE s.duration_ms IS NOT NULL AND s.status IN ('complete', 'failed')
               GROUP BY 1, 2`,
            )
          ).rows,
          ['pipeline', 'step'],
        ),
    ) as never,
  );

  registry.registerMetric(
    new CountedHistogram(
      'norn_lease_wait_seconds',
      'How long runs waited from their request until they held their scope, per pipeline.',
      async () =>
        histogramRows(
          (
            await q<Record<string, unknown>>(
              `SELECT pipeline, ${bucketColumns('extract(epoch FROM started_at - created_at)')}
               FROM runs WHERE started_at IS NOT NULL GROUP BY 1`,
            )
          ).rows,
          ['pipeline'],
        ),
    ) as never,
  );

  return registry;
}
