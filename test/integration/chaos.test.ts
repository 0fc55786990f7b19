/**
 * Faults at this machine's scale: 50 runs in flight over 10 apps on two worker processes, one of
 * which is SIGKILLed at a random moment three times (and started again each time). Every run must
 * end, every step of every run must complete exactly once in its saga, every app's event sequence
 * must stay gapless, and no lease may be left held.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitFor } from '../support/norn.js';
import { spawnNorn, TEST_PIPELINES, type NornProcess } from '../support/processes.js';

const APPS = 10;
const RUNS = 50;
const KILLS = 3;
const STEPS = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb.drop();
});

const randomMs = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

describe('chaos', () => {
  it(`${RUNS} runs over ${APPS} apps survive a worker SIGKILLed ${KILLS} times`, async () => {
    const env = testEnv(tdb.url, {
      NORN_PIPELINES_MODULE: TEST_PIPELINES,
      NORN_WORKER_CONCURRENCY: '4',
      LOG_LEVEL: 'info',
    });
    const system = testSystem(env);
    onTestFinished(() => system.close());
    const workers: NornProcess[] = [];
    const spawn = async () => {
      const w = spawnNorn('worker', env);
      workers.push(w);
      await w.waitForLog('worker started');
      return w;
    };
    onTestFinished(async () => {
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
    });
    const apps = Array.from({ length: APPS }, (_, i) => `chaos-${i}`);
    for (const app of apps) await registerApp(system, app);
    let victim = await spawn();
    await spawn(); // the other worker, never killed

    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const sleepMs = Object.fromEntries(STEPS.map((s) => [s, randomMs(50, 250)]));
      runs.push(
        await system.runs.request({
          appId: apps[i % APPS]!,
          pipeline: 'chain',
          params: { sleepMs },
        }),
      );
    }
    const ids = runs.map((r) => r.deploymentId);
    const ended = async () => {
      const { rows } = await system.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM runs
          WHERE id = ANY($1) AND status IN ('succeeded', 'failed', 'cancelled')`,
        [ids],
      );
      return rows[0]!.n;
    };

    const kills: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, randomMs(400, 1_500)));
      kills.push(await ended());
      victim.kill('SIGKILL');
      await victim.exited;
      victim = await spawn();
    }
    // The kills came while runs were still in flight.
    expect(kills[KILLS - 1]).toBeLessThan(RUNS);

    await waitFor(async () => (await ended()) === RUNS, `all ${RUNS} runs to end`, 180_000, 250);

    const { rows: statuses } = await system.db.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM runs WHERE id = ANY($1) GROUP BY status',
      [ids],
    );
    expect(statuses).toEqual([{ status: 'succeeded', n: RUNS }]);

    // Each step of each run completed exactly once, in its saga and in its record.
    for (const id of ids) {
      const steps = await system.store.steps(id);
      expect(
        steps.map((s) => `${s.name}:${s.status}`),
        id,
      ).toEqual(STEPS.map((s) => `${s}:complete`));
      const events = await system.events.bySaga(id);
      const completes = events
        .filter((e) => e.payload.status === 'complete')
        .map((e) => String(e.payload.step));
      expect(completes, id).toEqual(STEPS);
      expect(
        events.filter((e) => e.type === 'deploy.completed'),
        id,
      ).toHaveLength(1);
    }

    // Every app's events: sequence numbers 1..n, no gap, no repeat.
    const { rows: seqs } = await system.db.query<{ app_id: string; seqs: number[] }>(
      `SELECT app_id, array_agg(seq ORDER BY seq) AS seqs FROM events
        WHERE app_id = ANY($1) GROUP BY app_id`,
      [apps],
    );
    expect(seqs).toHaveLength(APPS);
    for (const { app_id, seqs: s } of seqs)
      expect(s.map(Number), app_id).toEqual(Array.from({ length: s.length }, (_, i) => i + 1));

    // No lease is left held.
    const { rows: leases } = await system.db.query('SELECT scope FROM leases');
    expect(leases).toEqual([]);
    // The kills did interrupt steps: some step ran more than once somewhere.
    const { rows: retried } = await system.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM run_steps WHERE run_id = ANY($1) AND attempts > 1`,
      [ids],
    );
    console.info(
      `chaos: ${KILLS} kills after ${kills.join(', ')} runs had ended; ${retried[0]!.n} steps re-ran`,
    );
    expect(retried[0]!.n).toBeGreaterThan(0);
  }, 240_000);
});
