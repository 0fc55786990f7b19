/**
 * The relay's bounded send buffer: a client whose socket backlog passes maxBufferedBytes is cut
 * off at once (a close frame would queue behind the backlog) while the app's other followers get
 * every event; a catch-up waits for the backlog instead; and the heartbeat takes any frame from
 * the client as a sign of life. Fakes stand in for the socket, Redis and PostgreSQL so the backlog
 * can be set exactly; the real sockets are exercised by relay.test.ts, ws-slow-client.test.ts and
 * bench/ws-fanout.ts.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { EventRelay, type RelayDeps } from '../../src/api/relay.js';
import { channels, type EventEnvelope } from '../../src/shared/events.js';
import { silentLogger } from '../../src/shared/logger.js';
import { waitFor } from '../support/norn.js';

class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: Array<Record<string, unknown>> = [];
  terminated = false;
  /** Bytes each send leaves queued on this socket (a reader that keeps up leaves none). */
  constructor(private readonly backlogPerSend: number) {
    super();
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
    this.bufferedAmount += this.backlogPerSend;
  }
  terminate() {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close', 1006);
  }
  close() {
    this.terminate();
  }
  ping() {}
}

const PREFIX = 'relaytest';
const event = (seq: number): EventEnvelope => ({
  id: seq,
  seq,
  type: 'step.completed',
  appId: 'app-1',
  runId: 'r1',
  sagaId: 'r1',
  ts: new Date(0).toISOString(),
  payload: { step: `s${seq}` },
});

function relayWith(maxBufferedBytes: number, history: EventEnvelope[] = []) {
  const subscriber = new EventEmitter() as EventEmitter & Record<string, unknown>;
  subscriber.subscribe = async () => 1;
  subscriber.quit = async () => 'OK';
  let head = 0;
  const deps = {
    subscriber,
    prefix: PREFIX,
    heartbeatMs: 60_000,
    maxBufferedBytes,
    apiToken: undefined,
    log: silentLogger,
    store: { getRunBySaga: async () => null },
    events: {
      appSeqs: async (ids: string[]) => new Map(ids.map((id) => [id, head])),
      byAppAfterSeq: async (_app: string, after: number, limit: number) => {
        const events = history.filter((e) => e.seq > after).slice(0, limit);
        const through = events.at(-1)?.seq ?? Math.max(after, head);
        return { events, through, more: history.some((e) => e.seq > through) };
      },
      get: async () => null,
    },
  } as unknown as RelayDeps;
  const relay = new EventRelay(deps);
  head = history.at(-1)?.seq ?? 0;
  const connect = (socket: FakeSocket, query: Record<string, string> = {}) =>
    (relay as unknown as { onConnection(ws: unknown, q: URLSearchParams): void }).onConnection(
      socket,
      new URLSearchParams({ app: 'app-1', ...query }),
    );
  const publish = (e: EventEnvelope) => {
    head = e.seq;
    subscriber.emit('message', channels(PREFIX).events, JSON.stringify([e]));
  };
  return { relay, connect, publish };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('relay send buffer', () => {
  it('drops the client that falls behind and keeps feeding the one that keeps up', async () => {
    const { relay, connect, publish } = relayWith(10_000);
    await relay.start();
    const slow = new FakeSocket(4_000); // its reader stalls: every send stays queued
    const fast = new FakeSocket(0);
    connect(slow);
    connect(fast);
    await settle();
    expect(relay.clientCount).toBe(2);
    for (let seq = 1; seq <= 10; seq++) publish(event(seq));
    await settle();

    expect(slow.terminated).toBe(true);
    // It got what fit: the confirmation and two events took it past 10,000 bytes; then nothing.
    expect(slow.sent.filter((m) => m.type === 'step.completed')).toHaveLength(2);
    expect(fast.terminated).toBe(false);
    expect(fast.sent.filter((m) => m.type === 'step.completed').map((m) => m.seq)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    expect(relay.clientCount).toBe(1);
    expect(relay.slowClientsDropped).toBe(1);
    await relay.close();
  });

  it('never drops a client whose backlog stays under the bound', async () => {
    const { relay, connect, publish } = relayWith(1_000_000);
    await relay.start();
    const client = new FakeSocket(1_000);
    connect(client);
    await settle();
    for (let seq = 1; seq <= 50; seq++) publish(event(seq));
    await settle();
    expect(client.terminated).toBe(false);
    expect(client.sent.filter((m) => m.type === 'step.completed')).toHaveLength(50);
    expect(relay.slowClientsDropped).toBe(0);
    await relay.close();
  });
});

describe('relay heartbeat', () => {
  const tick = (relay: EventRelay) => (relay as unknown as { tick(): void }).tick();

  it('drops a client that sends nothing between two pings', async () => {
    const { relay, connect } = relayWith(1_000_000);
    await relay.start();
    const silent = new FakeSocket(0);
    connect(silent);
    tick(relay);
    tick(relay);
    expect(silent.terminated).toBe(true);
    await relay.close();
  });

  it('keeps a client whose pong queues behind frames it sent first: any frame proves it is there', async () => {
    const { relay, connect } = relayWith(1_000_000);
    await relay.start();
    const busy = new FakeSocket(0);
    connect(busy);
    tick(relay);
    busy.emit('message', Buffer.from('not json'), false); // still being read; no pong yet
    tick(relay);
    expect(busy.terminated).toBe(false);
    tick(relay);
    expect(busy.terminated).toBe(true);
    await relay.close();
  });
});

describe('relay catch-up', () => {
  it('paces a long catch-up by the backlog instead of dropping a client that keeps reading', async () => {
    const history = Array.from({ length: 600 }, (_, i) => event(i + 1));
    const { relay, connect } = relayWith(10_000, history);
    await relay.start();
    const client = new FakeSocket(1_000); // each send queues 1,000 bytes ...
    const reader = setInterval(() => (client.bufferedAmount = 0), 2); // ... which the reader takes
    connect(client, { lastEventId: '0' });
    await waitFor(
      async () => client.terminated || client.sent.length > history.length,
      'the catch-up',
    );
    clearInterval(reader);
    expect(client.terminated).toBe(false);
    const seqs = client.sent.filter((m) => m.type === 'step.completed').map((m) => m.seq);
    expect(seqs).toEqual(history.map((e) => e.seq)); // every one, in order, across two reads
    expect(relay.slowClientsDropped).toBe(0);
    await relay.close();
  });

  it('stops a paced catch-up when the client goes away', async () => {
    const history = Array.from({ length: 100 }, (_, i) => event(i + 1));
    const { relay, connect } = relayWith(10_000, history);
    await relay.start();
    const client = new FakeSocket(1_000); // nobody reads: the catch-up waits after 6 events
    connect(client, { lastEventId: '0' });
    await settle();
    const waiting = client.sent.length;
    expect(waiting).toBeLessThan(10);
    client.terminate();
    await settle();
    expect(client.sent.length).toBe(waiting);
    await relay.close();
  });
});
