/** A WebSocket test client that records what it receives. */
import WebSocket from 'ws';
import type { EventEnvelope } from '../../src/shared/events.js';
import { waitFor } from './norn.js';

export interface WsClient {
  ws: WebSocket;
  events: EventEnvelope[];
  control: Array<Record<string, unknown>>;
  closed: Promise<number>;
  waitForType(type: string, timeoutMs?: number): Promise<EventEnvelope>;
  close(): void;
}

export async function connectWs(
  baseUrl: string,
  query: Record<string, string | number>,
  opts: { token?: string; autoPong?: boolean } = {},
): Promise<WsClient> {
  const url = new URL('/ws', baseUrl.replace(/^http/, 'ws'));
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  const ws = new WebSocket(url, {
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    autoPong: opts.autoPong ?? true,
  });
  const events: EventEnvelope[] = [];
  const control: Array<Record<string, unknown>> = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    if (typeof msg.type === 'string' && msg.type.startsWith('ws.')) control.push(msg);
    else events.push(msg);
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: ${res.statusCode}`)),
    );
  });
  if (query.app || query.saga)
    await waitFor(async () => control.length > 0, 'the subscription to be confirmed', 5_000);
  return {
    ws,
    events,
    control,
    closed,
    waitForType: (type, timeoutMs = 20_000) =>
      waitFor(async () => events.find((e) => e.type === type), `a ${type} event`, timeoutMs),
    close: () => ws.close(),
  };
}
