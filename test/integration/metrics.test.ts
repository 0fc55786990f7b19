/**
 * GET /metrics on a real api and worker: Prometheus' text format, the token unless
 * NORN_METRICS_PUBLIC, and counters and gauges that move with what the fleet does (runs and their
 * steps, queues, WebSocket clients, webhook refusals, drift findings, alert deliveries).
 */
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createAlerter } from '../../src/shared/alerts.js';
import { silentLogger } from '../../src/shared/logger.js';
import { DriftStateStore } from '../../src/shared/store/drift-state.js';
import {
  registerApp,
  testEnv,
  testSystem,
  useRunningApi,
  waitFor,
  waitForRun,
} from '../support/norn.js';
import { connectWs } from '../support/ws.js';

const TOKEN = 'metrics-token-0123456789abcdef';
const ctx = useRunningApi({ NORN_API_TOKEN: TOKEN });

/** The samples of a scrape: `name{a="x",b="y"}` (labels sorted) → value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`)
      .sort()
      .join(',');
    samples.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return samples;
}

const key = (name: string, labels: Record<string, string> = {}) => {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  return l ? `${name}{${l}}` : name;
};

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${ctx.api.url}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

describe('GET /metrics', () => {
  it('needs the api token, unless NORN_METRICS_PUBLIC=true', async () => {
    expect((await fetch(`${ctx.api.url}/metrics`)).status).toBe(401);
    const open = testSystem(
      testEnv(ctx.tdb.url, { NORN_API_TOKEN: TOKEN, NORN_METRICS_PUBLIC: 'true' }),
    );
    try {
      const res = await open.createApi().request('/metrics');
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('# TYPE norn_run_outcomes_total counter');
    } finally {
      await open.close();
    }
  });

  it('counts runs by outcome, their steps and lease waits in histograms, and queue depths', async () => {
    await registerApp(ctx.system, 'metered');
    const before = await scrape();
    const outcome = key('norn_run_outcomes_total', { pipeline: 'chain', outcome: 'succeeded' });
    const accepted = await ctx.system.runs.request({ appId: 'metered', pipeline: 'chain' });
    expect((await waitForRun(ctx.system, accepted.runId)).status).toBe('succeeded');
    const after = await scrape();
    expect(after.get(outcome)).toBe((before.get(outcome) ?? 0) + 1);
    const steps = (await ctx.system.store.getRun(accepted.runId))!.steps;
    for (const step of steps) {
      const count = key('norn_step_duration_seconds_count', { pipeline: 'chain', step });
      expect(after.get(count), count).toBeGreaterThanOrEqual(1);
      const inf = key('norn_step_duration_seconds_bucket', { pipeline: 'chain', step, le: '+Inf' });
      expect(after.get(inf)).toBe(after.get(count));
    }
    expect(after.get(key('norn_lease_wait_seconds_count', { pipeline: 'chain' }))).toBe(
      (before.get(key('norn_lease_wait_seconds_count', { pipeline: 'chain' })) ?? 0) + 1,
    );
    for (const state of ['waiting', 'active', 'delayed', 'failed'])
      expect(after.get(key('norn_queue_jobs', { queue: 'steps', state }))).toEqual(
        expect.any(Number),
      );
    expect(after.get('norn_stuck_runs')).toBe(0);
  });

  it('shows WebSocket clients, webhook refusals, drift findings and alert deliveries', async () => {
    const ws = await connectWs(ctx.api.url, {}, { token: TOKEN });
    try {
      await waitFor(async () => (await scrape()).get('norn_ws_clients') === 1, 'one ws client');
    } finally {
      ws.close();
    }

    const refused = await fetch(`${ctx.api.url}/webhooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': 'd1',
      },
      body: '{}',
    });
    expect(refused.status).toBe(401);

    await new DriftStateStore(ctx.system.db).record('app:metered', {
      status: 'drifted',
      fingerprint: 'f'.repeat(64),
    });
    await createAlerter({
      urls: ['http://127.0.0.1:9/alerts'],
      db: ctx.system.db,
      log: silentLogger,
      retries: 0,
    }).send({
      kind: 'drift.detected',
      subject: 'app:metered',
      summary: 'drifted',
    });

    const m = await scrape();
    expect(
      m.get(key('norn_webhook_refusals_total', { provider: 'github', reason: 'unsigned' })),
    ).toBe(1);
    expect(m.get(key('norn_drift_status', { subject: 'app:metered', status: 'drifted' }))).toBe(1);
    expect(m.get(key('norn_drift_status', { subject: 'app:metered', status: 'clean' }))).toBe(0);
    expect(m.get(key('norn_drift_error', { subject: 'app:metered' }))).toBe(0);
    expect(
      m.get(key('norn_alert_deliveries_total', { kind: 'drift.detected', status: 'failed' })),
    ).toBe(1);
  });

  it('a worker serves its own process metrics on NORN_WORKER_METRICS_PORT, with the token', async () => {
    const worker = testSystem(
      testEnv(ctx.tdb.url, {
        NORN_API_TOKEN: TOKEN,
        NORN_WORKER_METRICS_PORT: String(await freePort()),
      }),
    );
    try {
      await worker.startWorker();
      const url = `http://127.0.0.1:${worker.workerMetricsPort}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
      const m = parse(await res.text());
      const active = [...m.entries()].find(([k]) => k.startsWith('norn_worker_active_steps{'));
      expect(active?.[1]).toBe(0);
      expect(active?.[0]).toMatch(/worker="[^"]+"/);
      expect(
        [...m.keys()].some((k) => k.startsWith('norn_worker_process_resident_memory_bytes')),
      ).toBe(true);
      expect(
        [...m.keys()].some((k) => k.startsWith('norn_worker_nodejs_eventloop_lag_seconds')),
      ).toBe(true);
    } finally {
      await worker.close();
    }
  });
});

/** A port free on loopback now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
