/**
 * The dashboard's static files (built by `npm run build:ui` into NORN_UI_DIR), served at `/` with
 * an SPA fallback: a GET for a path with no file extension, outside the api's own prefixes, is
 * answered with index.html so that the browser's router shows the view. Paths never leave the
 * directory (decoded, normalised, checked). Every HTML answer carries a strict Content Security
 * Policy: scripts, styles and connections from this origin only, no inline code, no framing.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Context } from 'hono';

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Prefixes that belong to the api, never to the dashboard (their 404s stay the api's). */
const API_PREFIXES = ['/api', '/ws', '/admin', '/webhooks', '/metrics', '/healthz', '/readyz'];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const ownedByApi = (path: string) =>
  API_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));

function pageHeaders(c: Context) {
  c.header('Content-Security-Policy', CSP);
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Referrer-Policy', 'no-referrer');
  c.header('X-Frame-Options', 'DENY');
}

async function fileAt(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>norn: dashboard not built</title></head>
<body><h1>The dashboard is not built</h1>
<p>Run <code>npm run build:ui</code> (script/bootstrap does it), or set NORN_UI_DIR to where it is.
The api itself works: see <code>/api/openapi.json</code>.</p></body></html>
`;

/** A view's path, as the dashboard's router makes them: RFC 3986 path characters, no `//`. */
const VIEW = /^(\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)*\/?$/;

/**
 * What the api answers when no route matched (its not-found handler calls this first): for a GET
 * or HEAD outside the api's prefixes, a file of `dir`, or index.html for a view's path; undefined
 * otherwise (the api's JSON 404 then).
 */
export function serveUi(dir: string): (c: Context) => Promise<Response | undefined> {
  const root = resolve(dir);
  return async (c) => {
    const path = c.req.path;
    if ((c.req.method !== 'GET' && c.req.method !== 'HEAD') || ownedByApi(path)) return undefined;
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return undefined; // a malformed escape names no file
    }
    if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
    const file = resolve(root, `.${normalize(`/${decoded}`)}`);
    if (file !== root && !file.startsWith(root + sep)) return undefined;
    const index = join(root, 'index.html');
    const hasExtension = extname(decoded) !== '';
    if (!hasExtension && !VIEW.test(path)) return undefined;
    const target = hasExtension ? file : index;
    if (!(await fileAt(target))) {
      if (hasExtension) return undefined;
      pageHeaders(c);
      c.header('Cache-Control', 'no-store');
      return c.html(NOT_BUILT, 503);
    }
    const type = TYPES[extname(target)] ?? 'application/octet-stream';
    if (type.startsWith('text/html')) {
      pageHeaders(c);
      c.header('Cache-Control', 'no-cache');
    } else {
      c.header('X-Content-Type-Options', 'nosniff');
      // Vite names assets by their content hash: they never change under a name.
      c.header(
        'Cache-Control',
        decoded.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    }
    c.header('Content-Type', type);
    if (c.req.method === 'HEAD') return c.body(null, 200);
    return c.body(new Uint8Array(await readFile(target)), 200);
  };
}
