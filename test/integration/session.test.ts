/**
 * Dashboard sessions and the dashboard's files: the api token exchanged for an HttpOnly,
 * SameSite=Strict cookie that opens /api, /metrics, /admin/queues and /ws like the token, with a
 * same-origin check for anything that changes something; logout and expiry end it; only its hash
 * is stored. Then the static files: the SPA fallback, the CSP, caching, paths that try to leave
 * the directory, and the page shown while the dashboard is not built.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { CSP, serveUi } from '../../src/api/ui.js';
import { rawRequest } from '../support/raw-http.js';
import { registerApp, useRunningApi } from '../support/norn.js';

const TOKEN = 'session-token-0123456789abcdef';
const ui = mkdtempSync(join(tmpdir(), 'norn-ui-'));
mkdirSync(join(ui, 'assets'));
writeFileSync(join(ui, 'index.html'), '<!doctype html><title>norn</title><div id="root"></div>');
writeFileSync(join(ui, 'assets', 'index-abc123.js'), 'console.log("norn")');
writeFileSync(join(ui, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
const ctx = useRunningApi({
  NORN_API_TOKEN: TOKEN,
  NORN_UI_DIR: ui,
  NORN_METRICS_PUBLIC: 'false',
});

const url = (path: string) => ctx.api.url + path;
const origin = () => ctx.api.url;

async function login(token = TOKEN) {
  const res = await fetch(url('/api/session'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  const setCookie = res.headers.get('set-cookie') ?? '';
  const value = /norn_session=([^;]*)/.exec(setCookie)?.[1];
  return { res, setCookie, value, body: await res.json() };
}

const withCookie = (value: string, init: RequestInit = {}): RequestInit => ({
  ...init,
  headers: { cookie: `norn_session=${value}`, ...(init.headers as Record<string, string>) },
});

function upgrade(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${ctx.api.url.replace(/^http/, 'ws')}/ws`, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(0));
  });
}

describe('dashboard sessions', () => {
  it('refuses a wrong token and sets nothing', async () => {
    const wrong = await login('not-the-token-0123456789');
    expect(wrong.res.status).toBe(401);
    expect(wrong.body.error.code).toBe('UNAUTHORIZED');
    expect(wrong.setCookie).toBe('');
    const bad = await fetch(url('/api/session'), { method: 'POST', body: '{"token":' });
    expect(bad.status).toBe(400);
    const extra = await fetch(url('/api/session'), {
      method: 'POST',
      body: JSON.stringify({ token: TOKEN, admin: true }),
    });
    expect(extra.status).toBe(400);
  });

  it('exchanges the token for an HttpOnly, SameSite=Strict cookie whose hash alone is stored', async () => {
    const { res, setCookie, value, body } = await login();
    expect(res.status).toBe(200);
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const attributes = setCookie.split(';').map((a) => a.trim());
    expect(attributes).toEqual(
      expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=43200']),
    );
    expect(attributes).not.toContain('Secure'); // plain http on loopback
    const expiresAt = Date.parse(body.session.expiresAt);
    expect(expiresAt - Date.now()).toBeGreaterThan(43_000_000);
    expect(body.session.via).toBe('cookie');
    // The table holds the hash, never the value (nor the token).
    const { rows } = await ctx.tdb.db.query('SELECT to_jsonb(s)::text AS row FROM sessions s');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.row).not.toContain(value);
      expect(r.row).not.toContain(TOKEN);
    }
  });

  it('marks the cookie Secure behind an https proxy', async () => {
    const res = await fetch(url('/api/session'), {
      method: 'POST',
      headers: { 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(res.headers.get('set-cookie')).toMatch(/; Secure/);
  });

  it('opens /api, /metrics, /admin/queues and /ws like the token', async () => {
    await registerApp(ctx.system, 'session-app');
    const { value } = await login();
    const apps = await fetch(url('/api/apps'), withCookie(value!));
    expect(apps.status).toBe(200);
    expect((await apps.json()).apps.map((a: { id: string }) => a.id)).toContain('session-app');
    expect((await fetch(url('/api/session'), withCookie(value!))).status).toBe(200);
    expect((await fetch(url('/metrics'), withCookie(value!))).status).toBe(200);
    expect((await fetch(url('/admin/queues'), withCookie(value!))).status).toBe(200);
    // Without it, each is refused.
    expect((await fetch(url('/api/apps'))).status).toBe(401);
    expect((await fetch(url('/metrics'))).status).toBe(401);
    expect((await fetch(url('/admin/queues'))).status).toBe(401);
    expect((await fetch(url('/api/session'))).status).toBe(401);

    const cookie = `norn_session=${value}`;
    expect(await upgrade({ cookie, origin: origin() })).toBe(101);
    expect(await upgrade({ cookie, origin: 'https://evil.example' })).toBe(403);
    expect(await upgrade({ cookie })).toBe(403); // no Origin: not a page of ours
    expect(await upgrade({ cookie: 'norn_session=AAAA', origin: origin() })).toBe(401);
    expect(await upgrade({ cookie: `norn_session=${'A'.repeat(43)}`, origin: origin() })).toBe(401);
  });

  it('lets the cookie change something only from this origin', async () => {
    await registerApp(ctx.system, 'session-csrf');
    const { value } = await login();
    const deploy = (headers: Record<string, string>) =>
      fetch(
        url('/api/apps/session-csrf/drift-check'),
        withCookie(value!, { method: 'POST', headers }),
      );
    const foreign = await deploy({ origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect((await foreign.json()).error.code).toBe('FORBIDDEN');
    expect((await deploy({})).status).toBe(403);
    expect((await deploy({ origin: 'null' })).status).toBe(403);
    // The same origin gets through to the route (which answers as it would the token).
    const same = await deploy({ origin: origin() });
    expect([202, 422]).toContain(same.status);
    // The bearer token needs no Origin: it is no ambient credential.
    const bearer = await fetch(url('/api/apps/session-csrf/drift-check'), {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(bearer.status).toBe(same.status);
  });

  it('logout ends the session everywhere and clears the cookie', async () => {
    const { value } = await login();
    expect((await fetch(url('/api/apps'), withCookie(value!))).status).toBe(200);
    const out = await fetch(
      url('/api/session'),
      withCookie(value!, { method: 'DELETE', headers: { origin: origin() } }),
    );
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/norn_session=;.*Max-Age=0/);
    expect((await fetch(url('/api/apps'), withCookie(value!))).status).toBe(401);
    expect(await upgrade({ cookie: `norn_session=${value}`, origin: origin() })).toBe(401);
    // Logging out again (or with no session) still answers 204.
    expect((await fetch(url('/api/session'), { method: 'DELETE' })).status).toBe(204);
  });

  it('refuses an expired session', async () => {
    const { value } = await login();
    await ctx.tdb.db.query(
      "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE expires_at > now()",
    );
    expect((await fetch(url('/api/apps'), withCookie(value!))).status).toBe(401);
  });
});

describe("the dashboard's files", () => {
  it('serves index.html at / and as the fallback of views, with the CSP and no-cache', async () => {
    for (const path of [
      '/',
      '/apps/web',
      '/stacks',
      '/runs/8383b7f6-7b5e-4163-9151-3c105369549d',
    ]) {
      const res = await fetch(url(path));
      expect(res.status, path).toBe(200);
      expect(await res.text()).toContain('<div id="root">');
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toBe(CSP);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect(CSP).toContain("script-src 'self'");
    expect(CSP).not.toContain('unsafe-inline');
  });

  it('serves hashed assets for a year and other files revalidated', async () => {
    const asset = await fetch(url('/assets/index-abc123.js'));
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log("norn")');
    const icon = await fetch(url('/favicon.svg'));
    expect(icon.headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(url('/assets/missing.js'))).status).toBe(404);
  });

  it('never serves a file outside its directory', async () => {
    const content = 'outside-the-ui-dir-7f3a9c';
    writeFileSync(join(ui, '..', 'norn-ui-secret.txt'), content);
    for (const target of [
      '/../norn-ui-secret.txt',
      '/%2e%2e/norn-ui-secret.txt',
      '/assets/%2e%2e/%2e%2e/norn-ui-secret.txt',
      '/..%2fnorn-ui-secret.txt',
      '/%252e%252e/norn-ui-secret.txt',
      '/..%5cnorn-ui-secret.txt',
      '/x%00.txt',
      '/%E0%A4%A',
    ]) {
      const answer = await rawRequest(
        ctx.api.port,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
      expect(answer.text, target).not.toContain(content);
      expect(answer.status, target).toBeLessThan(500);
    }
  });

  it("leaves the api's own paths to the api", async () => {
    const nope = await fetch(url('/api/nope'), {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(nope.status).toBe(404);
    expect((await nope.json()).error.code).toBe('NOT_FOUND');
    expect((await fetch(url('/healthz'))).status).toBe(200);
    expect((await fetch(url('/webhooks/nope'))).status).toBe(404);
    expect((await fetch(url('/api/openapi.json'))).status).toBe(200);
  });
});

describe('without a built dashboard', () => {
  it('answers 503 saying how to build it, and 404 for a file', async () => {
    const serve = serveUi(mkdtempSync(join(tmpdir(), 'norn-ui-empty-')));
    const empty = new Hono().notFound(async (c) => (await serve(c)) ?? c.text('none', 404));
    const res = await empty.request('/apps/web');
    expect(res.status).toBe(503);
    expect(res.headers.get('content-security-policy')).toBe(CSP);
    expect(await res.text()).toContain('npm run build:ui');
    expect((await empty.request('/assets/index.js')).status).toBe(404);
  });
});
