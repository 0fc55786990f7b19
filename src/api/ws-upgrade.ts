/**
 * The HTTP upgrade to /ws, before any WebSocket exists. Authentication comes first and reads
 * headers only: `Authorization: Bearer <token>` (the CLI, servers), or, for browsers (which cannot
 * set headers on a WebSocket), the subprotocols `norn` and `norn.bearer.<base64url(token)>`; the
 * server answers with `norn`, never echoing the token. Tokens are not accepted in the URL, where
 * access logs, proxies and browser history would keep them. Only then is the request target looked
 * at, without `new URL` (which throws on targets such as `//[`). Nothing here may throw: any
 * failure answers the socket and closes it.
 */
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../shared/logger.js';
import { presentedToken, sameOrigin, sessionCookie, tokenMatches } from './auth.js';
import type { SessionStore } from '../shared/store/sessions.js';
import { refuseSocket } from './server-guards.js';

export const WS_PATH = '/ws';
export const WS_PROTOCOL = 'norn';
const BEARER_PROTOCOL = 'norn.bearer.';

/** The token an upgrade request presents, from its headers only. */
export function upgradeToken(headers: IncomingHttpHeaders): string | undefined {
  const fromHeader = presentedToken(
    typeof headers.authorization === 'string' ? headers.authorization : undefined,
  );
  if (fromHeader) return fromHeader;
  const offered = headers['sec-websocket-protocol'];
  if (typeof offered !== 'string') return undefined;
  for (const part of offered.split(',')) {
    const p = part.trim();
    if (p.startsWith(BEARER_PROTOCOL))
      return Buffer.from(p.slice(BEARER_PROTOCOL.length), 'base64url').toString('utf8');
  }
  return undefined;
}

/** The subprotocol the server answers with: `norn` when offered, none otherwise. */
export const selectProtocol = (offered: Set<string>): string | false =>
  offered.has(WS_PROTOCOL) ? WS_PROTOCOL : false;

/** Splits a request target into its path and query without a URL parser (never throws). */
export function splitTarget(target: string | undefined): { path: string; query: URLSearchParams } {
  const raw = target ?? '';
  const q = raw.indexOf('?');
  return {
    path: q < 0 ? raw : raw.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)),
  };
}

export interface UpgradeDeps {
  wss: WebSocketServer;
  apiToken: string | undefined;
  /** Dashboard sessions: a browser's upgrade carries the session cookie (and its Origin). */
  sessions?: Pick<SessionStore, 'find'>;
  log: Logger;
  onConnection(ws: WebSocket, query: URLSearchParams): void;
}

export function acceptUpgrades(server: Server, deps: UpgradeDeps): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node adds no error listener to an upgraded socket: a client resetting it would otherwise
    // throw from the socket's 'error' event and end the process.
    socket.on('error', (err) => deps.log.debug({ err }, 'upgrade socket error'));
    let upgraded = false;
    const accept = () => {
      const { path, query } = splitTarget(req.url);
      if (path !== WS_PATH) return refuseSocket(socket, '404 Not Found');
      deps.wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        deps.onConnection(ws, query);
      });
    };
    const unauthorized = () =>
      refuseSocket(socket, '401 Unauthorized', { 'WWW-Authenticate': 'Bearer' });
    try {
      if (tokenMatches(deps.apiToken, upgradeToken(req.headers))) return accept();
      const cookie = sessionCookie(req.headers.cookie);
      if (!cookie || !deps.sessions) return unauthorized();
      // A page of another site may open a WebSocket here, and browsers send cookies with it
      // (SameSite aside): the session counts only from this origin.
      if (!sameOrigin(req.headers.origin, req.headers.host))
        return refuseSocket(socket, '403 Forbidden');
      deps.sessions.find(cookie).then(
        (session) => {
          try {
            if (session) accept();
            else unauthorized();
          } catch (err) {
            deps.log.error({ err }, 'WebSocket upgrade failed');
            if (upgraded) socket.destroy();
            else refuseSocket(socket, '500 Internal Server Error');
          }
        },
        (err: unknown) => {
          deps.log.warn({ err }, 'WebSocket upgrade: the session could not be checked');
          refuseSocket(socket, '503 Service Unavailable', { 'Retry-After': '5' });
        },
      );
    } catch (err) {
      deps.log.error({ err }, 'WebSocket upgrade failed');
      if (upgraded) socket.destroy();
      else refuseSocket(socket, '500 Internal Server Error');
    }
  });
}
