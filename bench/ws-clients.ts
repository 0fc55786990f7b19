/**
 * The WebSocket clients of bench/ws-fanout.ts, in a process of their own so that their work is not
 * counted against the relay they measure (forked with an IPC channel), or, forked again as the
 * clock, a bare Redis subscriber noting when each event was published. For each event received it
 * keeps the event's id and the moment it arrived, which the bench compares with the moment the
 * event was published. Paused clients connect and subscribe, then stop reading their socket.
 */
import WebSocket from 'ws';
import { channels, parseEvents } from '../src/shared/events.js';
import { silentLogger } from '../src/shared/logger.js';
import { createRedis } from '../src/shared/redis.js';

interface ConnectCommand {
  cmd: 'connect';
  url: string;
  token: string;
  apps: string[];
  perApp: number;
  paused: number;
}

/** The clock: a process doing nothing else notes when each event is published. */
interface ClockCommand {
  cmd: 'clock';
  redisUrl: string;
  prefix: string;
}

type Command = ConnectCommand | ClockCommand | { cmd: 'collect' } | { cmd: 'close' };

const sockets: WebSocket[] = [];
/** [event id, arrival in epoch ms with a fraction (comparable across processes)]. */
const arrivals: Array<[number, number]> = [];
const now = () => performance.timeOrigin + performance.now();
const received = new Map<string, number[]>(); // app -> events received by each of its clients

function open(url: string, token: string, app: string, onEvent?: () => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws?app=${encodeURIComponent(app)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    ws.once('error', reject);
    ws.on('message', (data) => {
      const at = now();
      const msg = JSON.parse(String(data)) as { type: string; id?: number };
      if (msg.type === 'ws.subscribed') return resolve(ws);
      if (msg.type.startsWith('ws.') || msg.id === undefined) return;
      arrivals.push([msg.id, at]);
      onEvent?.();
    });
    sockets.push(ws);
  });
}

async function connect(c: ConnectCommand) {
  for (const app of c.apps) {
    const counts: number[] = [];
    received.set(app, counts);
    for (let i = 0; i < c.perApp; i++) {
      const slot = counts.push(0) - 1;
      await open(c.url, c.token, app, () => counts[slot]!++);
    }
  }
  for (let i = 0; i < c.paused; i++) {
    const ws = await open(c.url, c.token, c.apps[i % c.apps.length]!);
    // Stops reading: what the relay sends piles up in the kernel, then in the relay's buffer.
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }
}

async function clock(c: ClockCommand) {
  const sub = createRedis(c.redisUrl, 'subscriber', silentLogger);
  sub.on('message', (_ch: string, text: string) => {
    const at = now();
    for (const e of parseEvents(text)) arrivals.push([e.id, at]);
  });
  await sub.subscribe(channels(c.prefix).events);
}

process.on('message', (msg: Command) => {
  void (async () => {
    if (msg.cmd === 'clock') {
      await clock(msg);
      process.send!({ ready: true });
    } else if (msg.cmd === 'connect') {
      await connect(msg);
      process.send!({ ready: true });
    } else if (msg.cmd === 'collect') {
      process.send!({ arrivals, received: Object.fromEntries(received) });
    } else {
      for (const ws of sockets) ws.terminate();
      process.exit(0);
    }
  })().catch((err: Error) => {
    process.send!({ error: err.message });
  });
});
