/**
 * Bearer-token auth for /api, /ws and /admin/queues. The comparison is constant-time (both sides
 * are hashed first, so even the length is not leaked). Browsers may use HTTP Basic with the token
 * as password for Bull Board.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

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
  opts: { basicRealm?: string } = {},
): MiddlewareHandler {
  return async (c, next) => {
    if (tokenMatches(expected, presentedToken(c.req.header('authorization')))) return next();
    if (opts.basicRealm) c.header('WWW-Authenticate', `Basic realm="${opts.basicRealm}"`);
    else c.header('WWW-Authenticate', 'Bearer');
    return c.json({ error: { code: 'UNAUTHORIZED', message: 'missing or wrong API token' } }, 401);
  };
}
