/**
 * /api/session: a browser exchanges the api token for a session cookie (HttpOnly, SameSite=Strict)
 * and never keeps the token; logout ends the session. Paths relative to /api/session.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { errors, json } from './http.js';
import { Timestamp } from './schemas.js';

export const SessionView = z
  .object({
    session: z
      .object({
        /** When the cookie stops opening the session; null when the request used the bearer token. */
        expiresAt: Timestamp.nullable(),
        via: z.enum(['cookie', 'token']),
      })
      .strict(),
  })
  .strict()
  .openapi('Session');
export type SessionView = z.infer<typeof SessionView>;

export const LoginBody = z
  .object({ token: z.string().min(1).max(4096) })
  .strict()
  .openapi('LoginBody');
export type LoginBody = z.infer<typeof LoginBody>;

const setCookie = {
  'Set-Cookie': {
    description:
      '`norn_session=<value>; HttpOnly; SameSite=Strict; Path=/; Max-Age=<NORN_SESSION_TTL_S>` (and `Secure` over https).',
    schema: { type: 'string' as const },
  },
};

export const createSession = createRoute({
  method: 'post',
  path: '/',
  tags: ['session'],
  operationId: 'createSession',
  summary: 'Log in: exchange the api token for a session cookie',
  security: [],
  request: {
    body: { required: true, content: { 'application/json': { schema: LoginBody } } },
  },
  responses: {
    200: { ...json(SessionView, 'Logged in; the cookie is set.'), headers: setCookie },
    ...errors(),
  },
});

export const getSession = createRoute({
  method: 'get',
  path: '/',
  tags: ['session'],
  operationId: 'getSession',
  summary: 'Whether the request is logged in, and until when',
  responses: { 200: json(SessionView, 'The session (or the token) in use.'), ...errors() },
});

export const deleteSession = createRoute({
  method: 'delete',
  path: '/',
  tags: ['session'],
  operationId: 'deleteSession',
  summary: 'Log out: end the session and clear its cookie',
  security: [],
  responses: {
    204: { description: 'Logged out (also when there was no session).', headers: setCookie },
    ...errors(),
  },
});
