/** Raw HTTP over node:net, for requests no HTTP client would send (malformed lines, resets). */
import { connect } from 'node:net';

export interface RawAnswer {
  /** e.g. 401; 0 when the server closed without answering. */
  status: number;
  text: string;
}

/** The upgrade request a WebSocket client sends, for `target`, with extra header lines. */
export const upgradeRequest = (target: string, headers: string[] = []) =>
  [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...headers,
    '',
    '',
  ].join('\r\n');

/** A whole answer: a switch to WebSocket, or headers and as much body as Content-Length says. */
function complete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  if (/^HTTP\/1\.1 101/.test(text)) return true;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1];
  return length !== undefined && text.length - end - 4 >= Number(length);
}

/**
 * Sends `request` on a fresh connection and returns what came back before the server closed it
 * (or after `waitMs`). `reset` tears the connection down (RST) right after sending.
 */
export function rawRequest(
  port: number,
  request: string | Buffer,
  opts: { reset?: boolean; waitMs?: number } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    };
    const timer = setTimeout(done, opts.waitMs ?? 5_000);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (complete(text)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () => {
      socket.write(request);
      if (opts.reset) socket.resetAndDestroy();
    });
  });
}
