/**
 * Follows one saga over /ws until its run ends. The relay replays a saga from its start and then
 * streams live events; when the socket drops, we reconnect with `lastEventId` (bounded, with
 * backoff), and events already seen are dropped by their per-app `seq`, so the caller sees every
 * event exactly once, in order.
 */
import WebSocket from 'ws';
import { isEnvelope, type EventEnvelope } from '../shared/events.js';
import type { ApiClient } from './client.js';
import { CliError, EXIT } from './errors.js';
import { isTerminal } from './render.js';

export interface FollowOptions {
  api: ApiClient;
  sagaId: string;
  signal: AbortSignal;
  onEvent: (event: EventEnvelope) => void;
  /** Called before each reconnect attempt (1-based). */
  onReconnect?: (attempt: number, reason: string) => void;
  /** Consecutive failed connections tolerated before giving up. */
  maxRetries?: number;
  /** Silence (no message, no ping) after which the connection is presumed dead. */
  idleMs?: number;
}

type Attempt =
  | { kind: 'ended'; terminal: EventEnvelope }
  | { kind: 'dropped'; reason: string; subscribed: boolean }
  | { kind: 'fatal'; error: CliError };

/** Resolves with the run's terminal event (`*.completed` or `*.failed`). */
export async function followSaga(opts: FollowOptions): Promise<EventEnvelope> {
  const maxRetries = opts.maxRetries ?? 15;
  const cursor = { seq: 0, id: 0 };
  let failures = 0;
  for (;;) {
    const result = await connectOnce(opts, cursor);
    if (result.kind === 'ended') return result.terminal;
    if (result.kind === 'fatal') throw result.error;
    failures = result.subscribed ? 1 : failures + 1;
    if (opts.signal.aborted) throw interrupted();
    if (failures > maxRetries) {
      throw new CliError(
        'UNAVAILABLE',
        `lost the connection to the api at ${opts.api.display} (${result.reason}) and could not reconnect after ${maxRetries} attempts; the run goes on without this client`,
        EXIT.api,
      );
    }
    opts.onReconnect?.(failures, result.reason);
    await sleep(Math.min(250 * 2 ** (failures - 1), 2_000), opts.signal);
  }
}

function connectOnce(opts: FollowOptions, cursor: { seq: number; id: number }): Promise<Attempt> {
  const url = opts.api.wsUrl({
    saga: opts.sagaId,
    lastEventId: cursor.id > 0 ? cursor.id : undefined,
  });
  const ws = new WebSocket(url, { headers: opts.api.authHeaders, handshakeTimeout: 10_000 });
  return new Promise<Attempt>((resolve) => {
    let subscribed = false;
    let idle: NodeJS.Timeout | undefined;
    const done = (result: Attempt) => {
      clearTimeout(idle);
      opts.signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      ws.on('error', () => {}); // a late error after we stopped listening must not crash the CLI
      ws.terminate();
      resolve(result);
    };
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => done({ kind: 'dropped', reason: 'no message or ping for too long', subscribed }),
        opts.idleMs ?? 45_000,
      );
    };
    const onAbort = () => done({ kind: 'fatal', error: interrupted() });
    opts.signal.addEventListener('abort', onAbort, { once: true });
    touch();

    ws.on('ping', touch);
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      if (status === 401) {
        done({
          kind: 'fatal',
          error: new CliError(
            'UNAUTHORIZED',
            `the api at ${opts.api.display} refused the WebSocket: missing or wrong API token (401); set NORN_API_TOKEN or pass --token`,
            EXIT.api,
          ),
        });
      } else {
        done({ kind: 'dropped', reason: `WebSocket upgrade answered ${status}`, subscribed });
      }
    });
    ws.on('error', (err: Error & { code?: string }) =>
      done({ kind: 'dropped', reason: err.code ?? err.message, subscribed }),
    );
    ws.on('close', (code) =>
      done({ kind: 'dropped', reason: `connection closed (${code})`, subscribed }),
    );
    ws.on('message', (data) => {
      touch();
      let msg: unknown;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      const control = msg as { type?: unknown; message?: unknown };
      if (control.type === 'ws.subscribed') {
        subscribed = true;
        return;
      }
      if (control.type === 'ws.error') {
        done({
          kind: 'fatal',
          error: new CliError(
            'BAD_REQUEST',
            `the api refused to stream saga ${opts.sagaId}: ${String(control.message)}`,
            EXIT.api,
          ),
        });
        return;
      }
      if (!isEnvelope(msg) || msg.sagaId !== opts.sagaId || msg.seq <= cursor.seq) return; // replayed twice: drop
      cursor.seq = msg.seq;
      cursor.id = msg.id;
      opts.onEvent(msg);
      if (isTerminal(msg)) done({ kind: 'ended', terminal: msg });
    });
  });
}

const interrupted = () => new CliError('CANCELLED', 'interrupted', EXIT.interrupted);

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(interrupted());
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(interrupted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
