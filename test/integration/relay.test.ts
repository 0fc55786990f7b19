/** The /ws relay: live events from Redis pub/sub, replay from PostgreSQL, gap repair, heartbeats. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channels } from '../../src/shared/events.js';
import type { NornSystem, RunningApi } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';
import { connectWs } from '../support/ws.js';

const TOKEN = 'relay-token-0123456789abcdef';
let tdb: TestDatabase;
let system: NornSystem;
let api: RunningApi;

beforeAll(async () => {
  tdb = await createTestDatabase();
  system = testSystem(testEnv(tdb.url, { NORN_API_TOKEN: TOKEN }));
  await system.startWorker();
  api = await system.startApi(0);
});
afterAll(async () => {
  await system.close();
  await tdb.drop();
});

const opts = { token: TOKEN };

describe('/ws relay', () => {
  it('refuses an upgrade without the token', async () => {
    await registerApp(system, 'ws-auth');
    await expect(connectWs(api.url, { app: 'ws-auth' })).rejects.toThrow(/401/);
    await expect(
      connectWs(api.url, { app: 'ws-auth' }, { token: 'wrong-token-0123456789' }),
    ).rejects.toThrow(/401/);
  });

  it("streams an app's events live, in order, exactly as stored", async () => {
    await registerApp(system, 'ws-app');
    const client = await connectWs(api.url, { app: 'ws-app' }, opts);
    const run = await system.runs.request({ appId: 'ws-app', pipeline: 'chain', params: {} });
    await client.waitForType('deploy.completed');
    const stored = await system.events.bySaga(run.sagaId);
    expect(client.events.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(client.events).toEqual(stored);
    expect(client.events[0]).toMatchObject({
      type: 'deploy.queued',
      appId: 'ws-app',
      sagaId: run.sagaId,
    });
    client.close();
  });

  it('a saga subscription gets that saga only, from its start, even when it connects late', async () => {
    await registerApp(system, 'ws-saga');
    const a = await system.runs.request({ appId: 'ws-saga', pipeline: 'short', params: {} });
    await waitForRun(system, a.deploymentId);
    const b = await system.runs.request({
      appId: 'ws-saga',
      pipeline: 'short',
      params: { sleepMs: { s2: 300 } },
    });
    const client = await connectWs(api.url, { saga: b.sagaId }, opts);
    await client.waitForType('forge.completed');
    expect(client.events.every((e) => e.sagaId === b.sagaId)).toBe(true);
    expect(client.events.map((e) => e.id)).toEqual(
      (await system.events.bySaga(b.sagaId)).map((e) => e.id),
    );
    client.close();
  });

  it('reconnecting with lastEventId replays what was missed with no gap and no duplicate', async () => {
    await registerApp(system, 'ws-replay');
    const first = await connectWs(api.url, { app: 'ws-replay' }, opts);
    const run = await system.runs.request({
      appId: 'ws-replay',
      pipeline: 'chain',
      params: { sleepMs: { s3: 400, s6: 400 } },
    });
    await waitFor(async () => first.events.find((e) => e.payload.step === 's3'), 's3 to start');
    first.close();
    await first.closed;
    const lastSeen = first.events.at(-1)!.id;
    await waitFor(
      async () => (await system.events.bySaga(run.sagaId)).some((e) => e.payload.step === 's5'),
      'events while disconnected',
    );
    const second = await connectWs(api.url, { app: 'ws-replay', lastEventId: lastSeen }, opts);
    await second.waitForType('deploy.completed');
    const ids = [...first.events, ...second.events].map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual((await system.events.bySaga(run.sagaId)).map((e) => e.id));
    second.close();
  });

  it('fills a gap from PostgreSQL when a publish was lost or arrives out of order', async () => {
    await registerApp(system, 'ws-gap');
    const client = await connectWs(api.url, { app: 'ws-gap' }, opts);
    const saga = '11111111-2222-4333-8444-555555555555';
    // Two events committed; only the second is published (the first publish "was lost").
    const { rows } = await system.db.query(
      `SELECT norn_append_event('ws-gap', $1, 'test.one', '{}') AS a, norn_append_event('ws-gap', $1, 'test.two', '{}') AS b`,
      [saga],
    );
    await system.redis.publish(
      channels(system.config.queuePrefix).events,
      JSON.stringify(rows[0].b),
    );
    await waitFor(async () => client.events.length === 2, 'both events', 5_000);
    expect(client.events.map((e) => e.type)).toEqual(['test.one', 'test.two']);
    // The late publish of the first one is not delivered twice.
    await system.redis.publish(
      channels(system.config.queuePrefix).events,
      JSON.stringify(rows[0].a),
    );
    // An event committed but never published at all still arrives (the relay checks the log's head).
    await system.db.query(`SELECT norn_append_event('ws-gap', $1, 'test.three', '{}')`, [saga]);
    await waitFor(async () => client.events.length === 3, 'the unpublished event', 5_000);
    expect(client.events.map((e) => e.type)).toEqual(['test.one', 'test.two', 'test.three']);
    client.close();
  });

  it('drops a client that stops answering pings', async () => {
    await registerApp(system, 'ws-dead');
    const dead = await connectWs(api.url, { app: 'ws-dead' }, { ...opts, autoPong: false });
    const alive = await connectWs(api.url, { app: 'ws-dead' }, opts);
    const t0 = Date.now();
    await dead.closed;
    expect(Date.now() - t0).toBeLessThan(3_000); // heartbeat is 500 ms in tests
    await new Promise((r) => setTimeout(r, 1_200));
    expect(alive.ws.readyState).toBe(alive.ws.OPEN);
    alive.close();
  });

  it('answers bad subscriptions with an error message', async () => {
    const client = await connectWs(api.url, {}, opts);
    client.ws.send(JSON.stringify({ type: 'subscribe', app: 'no-such-app' }));
    await waitFor(async () => client.control.find((c) => c.type === 'ws.error'), 'an error');
    expect(client.control[0]!.message).toMatch(/no app/);
    client.ws.send('not json');
    await waitFor(async () => client.control.length === 2, 'a second error');
    client.close();
  });
});
