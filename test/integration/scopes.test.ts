/**
 * Scopes (issue 8, point 2): a run's scope is the key of its lease, derived from its pipeline's
 * definition and the request; one run per scope at a time across the fleet, scopes of one app
 * apart from each other; per-pipeline policies, coalesce; GET /api/scopes/:scope.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NornSystem } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';

const TOKEN = 'test-token-scopes-0123456789';
let tdb: TestDatabase;
let a: NornSystem;
let b: NornSystem;
let api: ReturnType<NornSystem['createApi']>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // Two processes of one fleet: same database, queue prefix and channels.
  const env = testEnv(tdb.url, { NORN_API_TOKEN: TOKEN });
  a = testSystem(env);
  b = testSystem(env);
  await a.startWorker();
  await b.startWorker();
  api = a.createApi();
  for (const app of ['sc-app', 'sc-other']) await registerApp(a, app);
});
afterAll(async () => {
  await a.close();
  await b.close();
  await tdb.drop();
});

const get = async (path: string) =>
  (await api.request(path, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
const traceFile = () => {
  const f = join(tmpdir(), `norn-scopes-${randomBytes(4).toString('hex')}.log`);
  writeFileSync(f, '');
  return f;
};
/** [start, end] in trace-line order of each run, from "<run> <step> start|end …" lines. */
function spans(file: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .forEach((line, i) => {
      const [run, , what] = line.split(' ');
      const span = out.get(run!) ?? [i, i];
      if (what === 'start') span[0] = Math.min(span[0], i);
      span[1] = Math.max(span[1], i);
      out.set(run!, span);
    });
  return out;
}
const overlap = (x: [number, number], y: [number, number]) => x[0] < y[1] && y[0] < x[1];

describe('scopes', () => {
  it('derives the scope from the pipeline and the request', async () => {
    const deploy = await a.runs.request({ appId: 'sc-app', pipeline: 'chain' });
    const drift = await a.runs.request({ appId: 'sc-app', pipeline: 'drift-check' });
    expect(deploy.scope).toBe('app:sc-app');
    expect(drift.scope).toBe('drift:sc-app');
    expect((await a.store.getRun(drift.runId))?.scope).toBe('drift:sc-app');
    for (const r of [deploy, drift]) await waitForRun(a, r.runId);
  });

  it('runs one run per scope at a time across the fleet, and scopes of one app side by side', async () => {
    const trace = traceFile();
    const params = { trace, sleepMs: { s2: 300, look: 600 } };
    // Requested through both processes: one scope still has one run at a time.
    const deploys = await Promise.all(
      [a, b, a, b].map((sys) => sys.runs.request({ appId: 'sc-app', pipeline: 'short', params })),
    );
    const drift = await b.runs.request({ appId: 'sc-app', pipeline: 'drift-check', params });
    for (const r of [...deploys, drift])
      expect((await waitForRun(a, r.runId)).status).toBe('succeeded');
    const s = spans(trace);
    const runs = deploys.map((d) => s.get(d.runId)!);
    for (let i = 0; i < runs.length; i++)
      for (let j = i + 1; j < runs.length; j++) expect(overlap(runs[i]!, runs[j]!)).toBe(false);
    // The drift check held its own scope while app:sc-app's runs went on.
    expect(runs.some((r) => overlap(r, s.get(drift.runId)!))).toBe(true);
  }, 30_000);

  it("run.request: takes the pipeline's policy, which a request may override", async () => {
    const first = await a.runs.request({
      appId: 'sc-other',
      pipeline: 'exclusive',
      params: { sleepMs: { s1: 5_000 } },
    });
    await expect(
      a.runs.request({ appId: 'sc-other', pipeline: 'exclusive' }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining(`app:sc-other is busy with run ${first.runId}`),
    });
    const queued = await a.runs.request({
      appId: 'sc-other',
      pipeline: 'exclusive',
      policy: 'queue',
    });
    expect(queued).toMatchObject({ status: 'queued', position: 1 });
    await a.runs.cancel(first.runId);
    expect((await waitForRun(a, queued.runId)).status).toBe('succeeded');
  }, 30_000);

  it('run.coalesce: a request finds the run of its pipeline already waiting and returns it', async () => {
    const running = await a.runs.request({
      appId: 'sc-other',
      pipeline: 'drift-check',
      params: { sleepMs: { look: 1_500 } },
    });
    expect(running.status).toBe('running');
    const waiting = await a.runs.request({ appId: 'sc-other', pipeline: 'drift-check' });
    expect(waiting).toMatchObject({ status: 'queued', position: 1 });
    expect(waiting.coalesced).toBeUndefined();
    const again = await Promise.all([
      a.runs.request({ appId: 'sc-other', pipeline: 'drift-check' }),
      b.runs.request({ appId: 'sc-other', pipeline: 'drift-check' }),
    ]);
    for (const r of again) expect(r).toMatchObject({ runId: waiting.runId, coalesced: true });
    // Nothing piled up: the scope holds the running one and one waiting.
    const view = await get('/api/scopes/drift:sc-other');
    expect(view.holder).toMatchObject({ runId: running.runId, pipeline: 'drift-check' });
    expect(view.waiting.map((w: { runId: string }) => w.runId)).toEqual([waiting.runId]);
    const all = await a.store.listRuns('sc-other', 50);
    expect(all.filter((r) => r.pipeline === 'drift-check')).toHaveLength(2);
    for (const r of [running, waiting])
      expect((await waitForRun(a, r.runId)).status).toBe('succeeded');
  }, 30_000);

  it('GET /api/scopes/:scope and the app view show the holder, its lease expiry and what waits', async () => {
    const holder = await a.runs.request({
      appId: 'sc-app',
      pipeline: 'short',
      params: { sleepMs: { s1: 3_000 } },
    });
    const behind = await a.runs.request({ appId: 'sc-app', pipeline: 'short' });
    const drift = await a.runs.request({
      appId: 'sc-app',
      pipeline: 'drift-check',
      params: { sleepMs: { look: 3_000 } },
    });
    await waitFor(async () => (await get('/api/scopes/app:sc-app')).holder, 'the holder');
    const view = await get('/api/scopes/app:sc-app');
    expect(view).toMatchObject({
      scope: 'app:sc-app',
      holder: { runId: holder.runId, pipeline: 'short', status: 'running' },
      waiting: [{ runId: behind.runId, pipeline: 'short' }],
    });
    expect(Date.parse(view.holder.expiresAt)).toBeGreaterThan(Date.now());
    expect(view.holder.holder).toEqual(expect.any(String));
    const app = await get('/api/apps/sc-app');
    expect(app.lease).toMatchObject({ scope: 'app:sc-app', holder: { runId: holder.runId } });
    expect(app.scopes.map((s: { scope: string }) => s.scope)).toEqual([
      'app:sc-app',
      'drift:sc-app',
    ]);
    expect(app.scopes[1].holder.runId).toBe(drift.runId);
    // The list tells the same of every app at once (the dashboard's apps view polls it alone).
    const listed = (await get('/api/apps')).apps as Array<{ id: string; status: unknown }>;
    expect(listed.find((x) => x.id === 'sc-app')?.status).toEqual({
      forge: 'unforged',
      latestRun: {
        runId: drift.runId,
        pipeline: 'drift-check',
        status: expect.stringMatching(/^(queued|running)$/),
        createdAt: expect.any(String),
      },
      holder: {
        runId: holder.runId,
        pipeline: 'short',
        holder: expect.any(String), // the worker running its step now: it may have moved on
        acquiredAt: expect.any(String),
      },
      queued: 1,
    });
    expect(listed.find((x) => x.id === 'sc-other')?.status).toMatchObject({
      holder: null,
      queued: 0,
    });
    // A scope nobody uses is free; a malformed one is a 400 saying what a scope looks like.
    expect(await get('/api/scopes/review:infra%2Fnet%2312')).toEqual({
      scope: 'review:infra/net#12',
      holder: null,
      waiting: [],
    });
    const bad = await api.request('/api/scopes/nope', {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/<app\|stack\|review\|drift>:<key>/);
    for (const r of [holder, behind, drift]) await a.runs.cancel(r.runId);
  }, 30_000);
});
