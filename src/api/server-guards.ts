/**
 * What keeps one bad connection from reaching the process: a request Node's parser refuses
 * (malformed request line or headers, oversized headers, a slow client) is answered and closed
 * here, and logged, as Node would do by itself, but never thrown. Hono answers errors inside
 * handlers (app.onError); the /ws upgrade guards itself (ws-upgrade.ts).
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../shared/logger.js';

const STATUS_FOR: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

const REFUSE_LINGER_MS = 5_000;

export function guardServer(server: Server, log: Logger): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    log.debug({ code: err.code, reason: err.message }, 'refused a malformed request');
    // A response already under way cannot be followed by another one: just close.
    const response = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || response?.headersSent) socket.destroy();
    else refuseSocket(socket, STATUS_FOR[err.code ?? ''] ?? '400 Bad Request');
  });
}

/** Answers a raw socket (before or instead of a WebSocket upgrade) with a status and closes it. */
export function refuseSocket(
  socket: Duplex,
  status: string,
  headers: Record<string, string> = {},
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.end(
    `HTTP/1.1 ${status}\r\n${extra.join('')}Connection: close\r\nContent-Length: 0\r\n\r\n`,
    () => socket.destroy(),
  );
  // A peer that never reads would keep the socket open: it gets a few seconds.
  setTimeout(() => socket.destroy(), REFUSE_LINGER_MS).unref();
}
