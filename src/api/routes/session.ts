/**
 * /api/session: dashboard login and logout. POST checks the api token (constant-time) and sets
 * the session cookie; the browser keeps only that (HttpOnly: no script reads it), never the token.
 * GET says whether the request is logged in; DELETE ends the session and clears the cookie.
 */
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Context } from 'hono';
import { NornError } from '../../shared/errors.js';
import { createSession, deleteSession, getSession, LoginBody } from '../../shared/api/session.js';
import type { SessionStore } from '../../shared/store/sessions.js';
import { presentedToken, SESSION_COOKIE, tokenMatches } from '../auth.js';
import { bodyReadByHandler, jsonBody, router } from './util.js';

export interface SessionDeps {
  apiToken: string | undefined;
  sessions: SessionStore;
  ttlS: number;
}

/** `Secure` when the request reached us (or the proxy in front) over https. */
const overHttps = (c: Context) =>
  c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https' ||
  new URL(c.req.url).protocol === 'https:';

export function sessionRoutes({ apiToken, sessions, ttlS }: SessionDeps) {
  const app = router();
  return app
    .openapi(bodyReadByHandler(app, createSession), async (c) => {
      const { token } = await jsonBody(c, LoginBody);
      if (!tokenMatches(apiToken, token))
        throw new NornError('UNAUTHORIZED', 'wrong API token; nothing was set');
      const session = await sessions.create(ttlS);
      setCookie(c, SESSION_COOKIE, session.value, {
        httpOnly: true,
        sameSite: 'Strict',
        path: '/',
        maxAge: ttlS,
        secure: overHttps(c),
      });
      return c.json({ session: { expiresAt: session.expiresAt, via: 'cookie' as const } }, 200);
    })
    .openapi(getSession, async (c) => {
      // The auth middleware let this request in: by the token, or by a live session.
      if (apiToken && tokenMatches(apiToken, presentedToken(c.req.header('authorization'))))
        return c.json({ session: { expiresAt: null, via: 'token' as const } }, 200);
      const session = await sessions.find(getCookie(c, SESSION_COOKIE));
      if (!session) return c.json({ session: { expiresAt: null, via: 'token' as const } }, 200);
      return c.json({ session: { expiresAt: session.expiresAt, via: 'cookie' as const } }, 200);
    })
    .openapi(deleteSession, async (c) => {
      await sessions.delete(getCookie(c, SESSION_COOKIE));
      deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict' });
      return c.body(null, 204);
    });
}
