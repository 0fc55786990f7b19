/**
 * The WebSocket relay (/ws). One Redis subscriber per api process receives every committed event;
 * each client follows one app (or one saga of it) with a cursor in that app's gapless sequence.
 * A message that skips ahead (lost or reordered publish) makes the relay read the missing events
 * from PostgreSQL, so a client sees every event once, in order. `lastEventId` on (re)connect
 * replays what was missed. Clients that send nothing (not even a pong) between two pings are
 * dropped, and so are clients that fall more than `maxBufferedBytes` behind (a bounded send
 * buffer): a slow reader costs the api a bounded amount of memory and never slows the others; it
 * reconnects with its lastEventId and catches up from PostgreSQL. Catch-ups are paced by the
 * client's backlog (they read from PostgreSQL at its speed), so a long catch-up never trips the
 * bound itself.
 */
import type { Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { closeQuietly } from '../shared/connection-errors.js';
import { channels, parseEvents, type EventEnvelope } from '../shared/events.js';
import type { Logger } from '../shared/logger.js';
import type { Redis } from '../shared/redis.js';
import type { EventStore } from '../shared/store/events.js';
import type { RunStore } from '../shared/store/runs.js';
import type { SessionStore } from '../shared/store/sessions.js';
import { unavailableService } from '../shared/unavailable.js';
import {
  parseClientMessage,
  parseQuerySubscription,
  type ParsedMessage,
  type SubscribeMessage,
} from './ws-messages.js';
import { acceptUpgrades, selectProtocol } from './ws-upgrade.js';

/** Client frames are small JSON messages; anything larger is refused (ws closes with 1009). */
export const WS_MAX_PAYLOAD = 64 * 1024;
/** How often a paced catch-up looks at a client's backlog again. */
const DRAIN_POLL_MS = 10;

export interface RelayDeps {
  subscriber: Redis;
  events: EventStore;
  store: RunStore;
  prefix: string;
  heartbeatMs: number;
  /** What one client may have queued on the api (beyond the kernel's socket buffer) before it is dropped. */
  maxBufferedBytes: number;
  apiToken: string | undefined;
  /** Dashboard sessions, which open /ws as the token does. */
  sessions?: Pick<SessionStore, 'find'>;
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
  /** Work enqueued and not finished; while none is, a next event can be sent at once. */
  private pending = 0;
  constructor(
    readonly ws: WebSocket,
    private readonly log: Logger,
    private readonly maxBufferedBytes: number,
    private readonly onSlow: (client: Client) => void,
  ) {}
  /** Serializes everything done for one client (catch-ups are async). A failure closes it (1011). */
  enqueue(work: () => Promise<void>) {
    this.pending++;
    this.chain = this.chain
      .then(work)
      .finally(() => this.pending--)
      .catch((err: unknown) => {
        const service = unavailableService(err);
        if (!service) this.log.error({ err }, 'relaying to a WebSocket client failed');
        this.send({
          type: 'ws.error',
          message: service ? `${service} is unreachable; reconnect later` : 'internal error',
        });
        this.ws.close(1011, service ? 'unavailable' : 'internal error');
      });
  }
  /** Runs an event handler's work; a bug in it closes this client (1011), never the process. */
  guard(work: () => void) {
    try {
      work();
    } catch (err) {
      this.log.error({ err }, 'WebSocket message handler failed');
      this.ws.close(1011, 'internal error');
    }
  }
  /**
   * Resolves once the socket's backlog is at most `bytes`, or the socket is closed. Catch-ups
   * pace themselves with it: they read from PostgreSQL at the client's speed, so a client that
   * reads slowly but keeps reading catches up instead of being dropped for the backlog they made.
   * One that stops reading altogether misses its pings and is dropped by the heartbeat.
   */
  async drained(bytes: number): Promise<void> {
    while (this.open && this.ws.bufferedAmount > bytes)
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  }
  /** Nothing is queued for this client: what comes next may be done synchronously, in order. */
  get idle() {
    return this.pending === 0;
  }
  get open() {
    return this.ws.readyState === this.ws.OPEN;
  }
  send(obj: unknown) {
    this.sendText(JSON.stringify(obj));
  }
  /** Sends JSON text already made (an event is serialized once for all of its followers). */
  sendText(text: string) {
    if (!this.open) return;
    this.ws.send(text);
    // A close frame would queue behind the backlog: end the connection at once instead.
    if (this.ws.bufferedAmount > this.maxBufferedBytes) {
      this.log.info(
        { bufferedBytes: this.ws.bufferedAmount, appId: this.sub?.appId },
        'dropping a WebSocket client that does not keep up',
      );
      this.ws.terminate();
      this.onSlow(this);
    }
  }
}

export class EventRelay {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: WS_MAX_PAYLOAD,
    handleProtocols: selectProtocol,
  });
  private readonly clients = new Set<Client>();
  /** Subscribed clients by app: an event is offered only to its app's followers. */
  private readonly followers = new Map<string, Set<Client>>();
  private slowDropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly channel: string;

  constructor(private readonly deps: RelayDeps) {
    this.channel = channels(deps.prefix).events;
  }

  async start(): Promise<void> {
    this.deps.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      for (const event of parseEvents(message))
        this.guarded('dispatch', () => this.dispatch(event));
    });
    await this.deps.subscriber.subscribe(this.channel);
    this.timer = setInterval(
      () => this.guarded('heartbeat', () => this.tick()),
      this.deps.heartbeatMs,
    );
  }

  /** Handles `upgrade` requests for /ws on the api's HTTP server (see ws-upgrade.ts). */
  attach(server: Server): void {
    acceptUpgrades(server, {
      wss: this.wss,
      apiToken: this.deps.apiToken,
      ...(this.deps.sessions ? { sessions: this.deps.sessions } : {}),
      log: this.deps.log,
      onConnection: (ws, query) => this.onConnection(ws, query),
    });
  }

  private onConnection(ws: WebSocket, query: URLSearchParams) {
    const client = new Client(ws, this.deps.log, this.deps.maxBufferedBytes, (c) => {
      this.slowDropped++;
      this.forget(c);
    });
    this.clients.add(client);
    // Anything the client sends proves it is there: a pong can queue behind a burst of frames
    // the client sent first, and reading those may outlast a heartbeat.
    const seen = () => {
      client.alive = true;
    };
    ws.on('pong', seen);
    ws.on('ping', seen);
    ws.on('close', () => this.forget(client));
    // e.g. a frame over maxPayload or invalid UTF-8: ws closes the connection itself (1009, 1007).
    ws.on('error', (err) => this.deps.log.debug({ err }, 'WebSocket client error'));
    ws.on('message', (data, isBinary) => {
      seen();
      client.guard(() => this.onMessage(client, parseClientMessage(data, isBinary)));
    });
    const fromQuery = parseQuerySubscription(query);
    if (fromQuery) client.guard(() => this.onMessage(client, fromQuery));
  }

  private onMessage(client: Client, msg: ParsedMessage) {
    if (!msg.ok) {
      client.send({ type: 'ws.error', message: msg.message, problems: msg.problems });
      return;
    }
    client.enqueue(() => this.subscribe(client, msg.value));
  }

  private async subscribe(client: Client, msg: SubscribeMessage): Promise<void> {
    const fail = (message: string) => client.send({ type: 'ws.error', message });
    const lastEventId = msg.lastEventId ?? undefined;
    let sub: Subscription;
    if (msg.saga) {
      const run = await this.deps.store.getRunBySaga(msg.saga);
      if (!run) return fail(`no saga ${msg.saga}`);
      sub = { appId: run.appId, sagaId: run.sagaId };
    } else {
      sub = { appId: msg.app! };
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
    this.follow(client, sub);
    client.send({ type: 'ws.subscribed', appId: sub.appId, sagaId: sub.sagaId ?? null });
    await this.catchUp(client);
  }

  private follow(client: Client, sub: Subscription) {
    if (client.sub) this.followers.get(client.sub.appId)?.delete(client);
    client.sub = sub;
    let set = this.followers.get(sub.appId);
    if (!set) this.followers.set(sub.appId, (set = new Set()));
    set.add(client);
  }

  private forget(client: Client) {
    this.clients.delete(client);
    const set = client.sub && this.followers.get(client.sub.appId);
    if (!set) return;
    set.delete(client);
    if (set.size === 0) this.followers.delete(client.sub!.appId);
  }

  private dispatch(event: EventEnvelope) {
    let text: string | undefined;
    /** Moves the client's cursor onto the event; sends it unless it follows another saga. */
    const next = (client: Client) => {
      client.cursor = event.seq;
      if (!client.sub!.sagaId || client.sub!.sagaId === event.sagaId)
        client.sendText((text ??= JSON.stringify(event))); // serialized once for all followers
    };
    for (const client of this.followers.get(event.appId) ?? []) {
      // The common case, with nothing queued for the client: the next event of its app, sent now
      // (no promise per client and event: 1,000 followers of a busy fleet make that add up).
      if (client.idle && event.seq === client.cursor + 1) {
        client.guard(() => next(client));
        continue;
      }
      client.enqueue(async () => {
        if (event.seq <= client.cursor) return; // already delivered (replay or duplicate)
        if (event.seq === client.cursor + 1) return next(client);
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
      for (const e of batch.events) {
        if (client.ws.bufferedAmount > this.deps.maxBufferedBytes / 2)
          await client.drained(this.deps.maxBufferedBytes / 4);
        if (!client.open) return;
        client.send(e);
      }
      client.cursor = batch.through;
      if (!batch.more) return;
    }
  }

  /** Pings (dropping clients that missed the last one) and catches up clients behind the log. */
  private tick() {
    for (const client of this.clients) {
      if (!client.alive) {
        client.ws.terminate();
        this.forget(client);
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
    const apps = [...this.followers.keys()];
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

  /** Timer and pub/sub callbacks: an exception there would otherwise end the process. */
  private guarded(what: string, work: () => void) {
    try {
      work();
    } catch (err) {
      this.deps.log.error({ err }, `relay ${what} failed`);
    }
  }

  get clientCount() {
    return this.clients.size;
  }

  /** Clients dropped so far because they fell more than maxBufferedBytes behind. */
  get slowClientsDropped() {
    return this.slowDropped;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    this.followers.clear();
    this.wss.close();
    await closeQuietly(() => this.deps.subscriber.quit(), 'redis:relay', this.deps.log);
  }
}
