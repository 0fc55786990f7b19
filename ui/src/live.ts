/**
 * One app's events, live, over /ws: the session cookie authenticates the upgrade. Every event is
 * delivered once, in order: the per-app `seq` drops what was already seen, and a reconnect (the
 * api restarted, the laptop slept, the tab was in the background) sends `lastEventId`, so the
 * relay replays exactly the gap from PostgreSQL. When the page becomes visible again and the
 * socket is not open, it reconnects at once instead of waiting for its backoff.
 */
import { isEnvelope, type EventEnvelope } from '../../src/shared/events.js';

export type LiveStatus = 'connecting' | 'live' | 'offline';

export interface LiveHandlers {
  onEvent(event: EventEnvelope): void;
  onStatus(status: LiveStatus): void;
  /** Called after every (re)connection: what was shown may be stale. */
  onResync(): void;
}

const MAX_BACKOFF_MS = 5_000;

export class LiveFeed {
  private ws: WebSocket | undefined;
  private lastId = 0;
  private lastSeq = 0;
  private failures = 0;
  private timer: number | undefined;
  private stopped = false;
  private readonly onVisible = () => {
    if (document.visibilityState === 'visible' && this.ws?.readyState !== WebSocket.OPEN)
      this.reconnectNow();
  };

  constructor(
    private readonly appId: string,
    private readonly handlers: LiveHandlers,
  ) {}

  start(): void {
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('online', this.onVisible);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('online', this.onVisible);
    this.ws?.close();
  }

  private reconnectNow() {
    window.clearTimeout(this.timer);
    this.ws?.close();
    this.connect();
  }

  private connect() {
    if (this.stopped) return;
    this.handlers.onStatus(this.failures === 0 ? 'connecting' : 'offline');
    const query = new URLSearchParams({ app: this.appId });
    if (this.lastId > 0) query.set('lastEventId', String(this.lastId));
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?${query}`);
    this.ws = ws;
    ws.onmessage = (msg) => {
      let data: unknown;
      try {
        data = JSON.parse(String(msg.data));
      } catch {
        return;
      }
      const type = (data as { type?: unknown }).type;
      if (type === 'ws.subscribed') {
        this.failures = 0;
        this.handlers.onStatus('live');
        this.handlers.onResync();
        return;
      }
      if (!isEnvelope(data) || data.seq <= this.lastSeq) return; // seen already
      this.lastSeq = data.seq;
      this.lastId = data.id;
      this.handlers.onEvent(data);
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.stopped) return;
      this.failures++;
      this.handlers.onStatus('offline');
      const wait = Math.min(250 * 2 ** Math.min(this.failures - 1, 5), MAX_BACKOFF_MS);
      this.timer = window.setTimeout(() => this.connect(), wait);
    };
  }
}
