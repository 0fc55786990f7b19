/**
 * The /ws send buffer over real sockets: a client that stops reading (its socket paused, so the
 * kernel's buffers fill and the backlog grows on the api) is dropped once more than
 * NORN_WS_MAX_BUFFERED_BYTES wait for it, while another client of the same app gets every event,
 * once, in order. The dropped one comes back with its lastEventId and catches up from PostgreSQL,
 * 50 times the bound in one catch-up, which is paced by its backlog and so never trips the bound.
 * The heartbeat is set far out, so only the buffer bound can drop the stalled client here.
 */
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/shared/events.js';
import { registerApp, useRunningApi, waitFor, waitForRun } from '../support/norn.js';
import { connectWs } from '../support/ws.js';

const TOKEN = 'ws-slow-token-0123456789abcdef';
const BOUND = 256 * 1024;
const ctx = useRunningApi({
  NORN_API_TOKEN: TOKEN,
  NORN_WS_MAX_BUFFERED_BYTES: String(BOUND),
  NORN_WS_HEARTBEAT_MS: '600000',
});
/** 400 events of 32 KiB: 12.5 MiB, far more than loopback's socket buffers hold for a stalled reader. */
const EVENTS = 400;
const PAYLOAD = 'x'.repeat(32 * 1024);

async function metric(name: string): Promise<number> {
  const res = await fetch(`${ctx.api.url}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe('/ws slow client', () => {
  it('drops a client that stops reading once the bound is passed; the others get every event', async () => {
    await registerApp(ctx.system, 'ws-slow');
    const run = await ctx.system.runs.request({ appId: 'ws-slow', pipeline: 'short', params: {} });
    await waitForRun(ctx.system, run.deploymentId);
    const stalled = await connectWs(ctx.api.url, { app: 'ws-slow' }, { token: TOKEN });
    const reader = await connectWs(ctx.api.url, { app: 'ws-slow' }, { token: TOKEN });
    const before = reader.events.length;
    const { rows } = await ctx.system.db.query<{ id: string }>(
      `SELECT max(id)::text AS id FROM events WHERE app_id = 'ws-slow'`,
    );
    const lastSeen = rows[0]!.id;
    await waitFor(async () => ctx.api.relay.clientCount === 2, 'two clients');
    expect(await metric('norn_ws_slow_clients_dropped_total')).toBe(0);
    (stalled.ws as unknown as { _socket: Socket })._socket.pause();

    const appended: EventEnvelope[] = [];
    for (let i = 0; i < EVENTS; i += 20) {
      const batch: EventEnvelope[] = [];
      for (let j = i; j < i + 20; j++) {
        const { rows } = await ctx.system.db.query<{ e: EventEnvelope }>(
          `SELECT norn_append_event('ws-slow', $1, 'test.big', $2) AS e`,
          [run.sagaId, JSON.stringify({ n: j, fill: PAYLOAD })],
        );
        batch.push(rows[0]!.e);
      }
      appended.push(...batch);
      await ctx.system.bus.publish(batch);
    }

    // The reader gets all of them, once, in order, while the stalled one is cut off.
    await waitFor(
      async () => reader.events.length - before >= EVENTS,
      `${EVENTS} events on the reading client (got ${reader.events.length - before})`,
      30_000,
    );
    expect(reader.events.slice(before).map((e) => e.id)).toEqual(appended.map((e) => e.id));
    await waitFor(async () => ctx.api.relay.clientCount === 1, 'the stalled client dropped');
    expect(ctx.api.relay.slowClientsDropped).toBe(1);
    expect(await metric('norn_ws_slow_clients_dropped_total')).toBe(1);
    expect(reader.ws.readyState).toBe(reader.ws.OPEN);

    // What the stalled client had read stays valid: reconnecting from it fills the rest, once.
    (stalled.ws as unknown as { _socket: Socket })._socket.resume();
    expect(await stalled.closed).toBe(1006);
    const back = await connectWs(
      ctx.api.url,
      { app: 'ws-slow', lastEventId: lastSeen },
      { token: TOKEN },
    );
    await waitFor(
      async () => back.events.length >= EVENTS,
      `the catch-up (got ${back.events.length})`,
      30_000,
    );
    expect(back.events.map((e) => e.id)).toEqual(appended.map((e) => e.id));
    back.close();
    reader.close();
  });
});
