/**
 * A smart-HTTP git server on 127.0.0.1 for tests: each request runs `git http-backend` as a CGI
 * program. It can require HTTP Basic auth (any user name, the token as password), speak only the
 * old protocol v0 (which refuses to serve unadvertised commits by SHA), redirect everything to
 * another server, or stall forever.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface GitHttpServerOptions {
  /** Folder holding the repositories; URLs are `${url}/<path under root>`. */
  root: string;
  /** When set, requests need `Authorization: Basic base64(anyuser:token)`. */
  token?: string;
  /** Drop the Git-Protocol header so the backend speaks protocol v0. */
  protocolV0?: boolean;
  /** Accept connections and never answer (to test aborts). */
  stall?: boolean;
  /**
   * After the auth check, answer the first request of every fetch (GET …/info/refs) with a 302 to
   * the same path under this base URL, as a moved repository does.
   */
  redirectTo?: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
}

export interface GitHttpServer {
  url: string;
  port: number;
  /** Authorization headers seen, to prove the token was actually sent. */
  authHeaders: string[];
  /** `METHOD url` of every request that passed the auth check. */
  requests: string[];
  close(): Promise<void>;
}

export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const authHeaders: string[] = [];
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    if (options.stall) return; // hold the connection open, say nothing
    if (req.headers.authorization) authHeaders.push(req.headers.authorization);
    if (options.token !== undefined && !authorized(req, options.token)) {
      res.writeHead(401, {
        'WWW-Authenticate': 'Basic realm="norn-test"',
        'Content-Type': 'text/plain',
      });
      res.end('authentication required\n');
      return;
    }
    requests.push(`${req.method} ${req.url}`);
    if (options.redirectTo && /\/info\/refs(\?|$)/.test(req.url ?? '')) {
      res.writeHead(302, { Location: `${options.redirectTo}${req.url ?? '/'}` }).end();
      return;
    }
    serveCgi(req, res, options);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    authHeaders,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function authorized(req: IncomingMessage, token: string): boolean {
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m?.[1]) return false;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && decoded.slice(colon + 1) === token;
}

function serveCgi(req: IncomingMessage, res: ServerResponse, options: GitHttpServerOptions): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: options.root,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_USER: 'norn-test',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
  };
  if (req.headers['content-encoding'])
    env.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
  if (req.headers['git-protocol'] && !options.protocolV0)
    env.GIT_PROTOCOL = String(req.headers['git-protocol']);

  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {});
  child.on('error', (err) => {
    if (!res.headersSent) res.writeHead(500).end(String(err));
  });
  res.on('close', () => child.kill('SIGKILL')); // the client went away (e.g. an aborted clone)
  pipeCgiResponse(child.stdout, res);
}

/** Parses the CGI header block (`Status:` and other headers up to a blank line), then streams the body. */
function pipeCgiResponse(out: NodeJS.ReadableStream, res: ServerResponse): void {
  let head = Buffer.alloc(0);
  let done = false;
  out.on('data', (chunk: Buffer) => {
    if (done) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end =
      crlf >= 0 && (lf < 0 || crlf < lf)
        ? { at: crlf, len: 4 }
        : lf >= 0
          ? { at: lf, len: 2 }
          : undefined;
    if (!end) return;
    done = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end.at).toString('latin1').split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const name = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end.at + end.len));
  });
  out.on('end', () => {
    if (!done) res.writeHead(502);
    res.end();
  });
}
