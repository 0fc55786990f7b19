/**
 * The WebSocket relay (/ws). One Redis subscriber per api process receives every committed event;
 * each client follows one app (or one saga of it) with a cursor in that app's gapless sequence.
 * A message that skips ahead (lost or reordered publish) makes the relay read the missing events
 * from PostgreSQL, so a client sees every event once, in order. `lastEventId` on (re)connect
 * replays what was missed. Clients that miss a ping are dropped.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { channels, isEnvelope, type EventEnvelope } from '../shared/events.js';
import type { Logger } from '../shared/logger.js';
import type { Redis } from '../shared/redis.js';
import type { EventStore } from '../shared/store/events.js';
import type { RunStore } from '../shared/store/runs.js';
import { presentedToken, tokenMatches } from './auth.js';

export interface RelayDeps {
  subscriber: Redis;
  events: EventStore;
  store: RunStore;
  prefix: string;
  heartbeatMs: number;
  apiToken: string | undefined;
  log: Logger;
}

interface Subscription {
  appId: string;
  sagaId?: string;
  lastEventId?: number;
}

class Client {
  alive = true;
  cursor = 0;
  sub: Subscription | undefined;
  private chain: Promise<void> = Promise.resolve();
  constructor(readonly ws: WebSocket) {}
  /** Serializes everything done for one client (catch-ups are async). */
  enqueue(work: () => Promise<void>) {
    this.chain = this.chain.then(work).catch(() => this.ws.terminate());
  }
  send(obj: unknown) {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(obj));
  }
}

export class EventRelay {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly clients = new Set<Client>();
  private timer: NodeJS.Timeout | undefined;
  private readonly channel: string;

  constructor(private readonly deps: RelayDeps) {
    this.channel = channels(deps.prefix).events;
  }

  async start(): Promise<void> {
    this.deps.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      let event: unknown;
      try {
        event = JSON.parse(message);
      } catch {
        return;
      }
      if (isEnvelope(event)) this.dispatch(event);
    });
    await this.deps.subscriber.subscribe(this.channel);
    this.timer = setInterval(() => this.tick(), this.deps.heartbeatMs);
  }

  /** Handles `upgrade` requests for /ws on the api's HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/ws') return socket.destroy();
      const token =
        presentedToken(req.headers.authorization) ??
        url.searchParams.get('access_token') ??
        undefined;
      if (!tokenMatches(this.deps.apiToken, token)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, url.searchParams));
    });
  }

  private onConnection(ws: WebSocket, query: URLSearchParams) {
    const client = new Client(ws);
    this.clients.add(client);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('close', () => this.clients.delete(client));
    ws.on('error', () => ws.terminate());
    ws.on('message', (data) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return client.send({ type: 'ws.error', message: 'messages must be JSON' });
      }
      if (msg.type === 'subscribe') client.enqueue(() => this.subscribe(client, msg));
      else
        client.send({
          type: 'ws.error',
          message: 'unknown message type; send {"type":"subscribe","app"|"saga":…,"lastEventId"?}',
        });
    });
    if (query.get('app') || query.get('saga')) {
      client.enqueue(() =>
        this.subscribe(client, {
          app: query.get('app'),
          saga: query.get('saga'),
          lastEventId: query.get('lastEventId') ?? undefined,
        }),
      );
    }
  }

  private async subscribe(client: Client, msg: Record<string, unknown>): Promise<void> {
    const fail = (message: string) => client.send({ type: 'ws.error', message });
    const lastEventId =
      msg.lastEventId === undefined || msg.lastEventId === null
        ? undefined
        : Number(msg.lastEventId);
    if (lastEventId !== undefined && (!Number.isInteger(lastEventId) || lastEventId < 0))
      return fail('lastEventId must be a non-negative integer');
    let sub: Subscription;
    if (typeof msg.saga === 'string' && msg.saga) {
      const run = await this.deps.store.getRunBySaga(msg.saga);
      if (!run) return fail(`no saga ${msg.saga}`);
      sub = { appId: run.appId, sagaId: run.sagaId };
    } else if (typeof msg.app === 'string' && msg.app) {
      sub = { appId: msg.app };
    } else {
      return fail('subscribe needs "app" or "saga"');
    }
    const head = (await this.deps.events.appSeqs([sub.appId])).get(sub.appId);
    if (head === undefined) return fail(`no app ${sub.appId}`);
    if (lastEventId !== undefined && lastEventId > 0) {
      const last = await this.deps.events.get(lastEventId);
      if (!last || last.appId !== sub.appId)
        return fail(`event ${lastEventId} is not an event of app ${sub.appId}`);
      client.cursor = last.seq;
    } else {
      // A saga is replayed from its start; an app from lastEventId (0: everything) or from now.
      client.cursor = sub.sagaId || lastEventId === 0 ? 0 : head;
    }
    client.sub = sub;
    client.send({ type: 'ws.subscribed', appId: sub.appId, sagaId: sub.sagaId ?? null });
    await this.catchUp(client);
  }

  private dispatch(event: EventEnvelope) {
    for (const client of this.clients) {
      if (client.sub?.appId !== event.appId) continue;
      client.enqueue(async () => {
        if (event.seq <= client.cursor) return; // already delivered (replay or duplicate)
        if (event.seq === client.cursor + 1) {
          client.cursor = event.seq;
          if (!client.sub!.sagaId || client.sub!.sagaId === event.sagaId) client.send(event);
          return;
        }
        await this.catchUp(client); // a gap: read it from PostgreSQL
      });
    }
  }

  /** Sends every committed event after the client's cursor, from PostgreSQL. */
  private async catchUp(client: Client): Promise<void> {
    const sub = client.sub;
    if (!sub) return;
    for (;;) {
      const batch = await this.deps.events.byAppAfterSeq(sub.appId, client.cursor, 500, sub.sagaId);
      for (const e of batch.events) client.send(e);
      client.cursor = batch.through;
      if (!batch.more) return;
    }
  }

  /** Pings (dropping clients that missed the last one) and catches up clients behind the log. */
  private tick() {
    for (const client of this.clients) {
      if (!client.alive) {
        client.ws.terminate();
        this.clients.delete(client);
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
    const apps = [
      ...new Set([...this.clients].map((c) => c.sub?.appId).filter((a): a is string => !!a)),
    ];
    this.deps.events
      .appSeqs(apps)
      .then((heads) => {
        for (const client of this.clients) {
          const head = client.sub && heads.get(client.sub.appId);
          if (head !== undefined && head > client.cursor)
            client.enqueue(() => this.catchUp(client));
        }
      })
      .catch((err) => this.deps.log.warn({ err }, 'relay head check failed'));
  }

  get clientCount() {
    return this.clients.size;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    this.wss.close();
    await this.deps.subscriber.quit().catch(() => {});
  }
}
