/**
 * Auth for /api, /ws, /metrics and /admin/queues: the bearer token, or a dashboard session's
 * cookie. The token comparison is constant-time (both sides are hashed first, so even the length
 * is not leaked). Browsers may use HTTP Basic with the token as password for Bull Board. A
 * request that the cookie alone authenticates and that could change something (POST, PUT, PATCH,
 * DELETE; a /ws upgrade) must come from this origin: its Origin header must name this host, so
 * another site's page cannot act with the operator's session (SameSite=Strict already keeps the
 * cookie off cross-site requests; this is the second lock).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { SessionStore } from '../shared/store/sessions.js';

/** The dashboard session's cookie. */
export const SESSION_COOKIE = 'norn_session';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Whether `origin` (an Origin header) names `host` (the Host header): same scheme-less authority. */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host || origin === 'null') return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/** The value of the session cookie in a Cookie header (for the /ws upgrade, outside Hono). */
export function sessionCookie(cookieHeader: string | undefined): string | undefined {
  for (const part of (cookieHeader ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function tokenMatches(expected: string | undefined, presented: string | undefined): boolean {
  if (!expected) return true; // no token configured: only allowed on loopback (config enforces it)
  if (!presented) return false;
  return timingSafeEqual(digest(expected), digest(presented));
}

/** Extracts the token from `Authorization: Bearer …` or `Basic base64(user:token)`. */
export function presentedToken(authorization: string | undefined | null): string | undefined {
  if (!authorization) return undefined;
  const [scheme, value] = authorization.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim();
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i >= 0 ? decoded.slice(i + 1) : undefined;
  }
  return undefined;
}

export function requireToken(
  expected: string | undefined,
  opts: { basicRealm?: string; sessions?: SessionStore } = {},
): MiddlewareHandler {
  return async (c, next) => {
    if (tokenMatches(expected, presentedToken(c.req.header('authorization')))) return next();
    const session = opts.sessions && (await opts.sessions.find(getCookie(c, SESSION_COOKIE)));
    if (session) {
      if (UNSAFE.has(c.req.method) && !sameOrigin(c.req.header('origin'), c.req.header('host')))
        return c.json(
          {
            error: {
              code: 'FORBIDDEN',
              message:
                'a request authenticated by the session cookie that changes something must carry an Origin header naming this host',
            },
          },
          403,
        );
      return next();
    }
    if (opts.basicRealm) c.header('WWW-Authenticate', `Basic realm="${opts.basicRealm}"`);
    else c.header('WWW-Authenticate', 'Bearer');
    return c.json({ error: { code: 'UNAUTHORIZED', message: 'missing or wrong API token' } }, 401);
  };
}
