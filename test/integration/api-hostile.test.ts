/**
 * A real api process against hostile clients: malformed request lines and headers, upgrades of any
 * shape with and without the token, connections reset mid-request, and /ws frames that are not
 * what the relay expects. Each must be answered (or closed) and the process must go on serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testEnv, waitFor } from '../support/norn.js';
import { spawnNorn, TEST_PIPELINES, type NornProcess } from '../support/processes.js';
import { rawRequest, upgradeRequest } from '../support/raw-http.js';
import { connectWs } from '../support/ws.js';

const TOKEN = 'hostile-token-0123456789abcdef';
const APP = 'h7a-ws';
let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb.drop();
});

async function startApi(): Promise<{ api: NornProcess; base: string; port: number }> {
  const env = testEnv(tdb.url, {
    NORN_API_TOKEN: TOKEN,
    NORN_PIPELINES_MODULE: TEST_PIPELINES,
    LOG_LEVEL: 'info',
  });
  const api = spawnNorn('api', env);
  await api.waitForLog('api listening', 60_000);
  const base = /"url":"(http:\/\/[^"]+)"/.exec(api.output())![1]!;
  const res = await fetch(`${base}/api/apps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: APP, processes: { web: { port: 19120 } } }),
  });
  expect(res.status).toBeLessThan(300);
  return { api, base, port: Number(new URL(base).port) };
}

/** The process answers plain requests and WebSocket subscriptions, and nothing escaped a handler. */
async function expectServing(api: NornProcess, base: string) {
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const client = await connectWs(base, { app: APP }, { token: TOKEN });
  expect(client.control[0]).toMatchObject({ type: 'ws.subscribed', appId: APP });
  client.close();
  expect(api.child.exitCode).toBeNull();
  expect(api.output()).not.toMatch(/uncaught|unhandled promise rejection/i);
}

const BEARER = `Authorization: Bearer ${TOKEN}`;
const protocolToken = (token: string) => `norn.bearer.${Buffer.from(token).toString('base64url')}`;

describe('HTTP upgrades of any shape', () => {
  it('are answered without taking the api down; without the token they get 401 whatever the target', async () => {
    const { api, base, port } = await startApi();
    const targets = ['//[', '/ws', '*', 'http://[::1', '/%zz%', '/ws?%zz=%ff&app=%00', '//[?app=['];
    const unauthenticated = [
      ...targets.map((t) => upgradeRequest(t)),
      upgradeRequest(`/${'a'.repeat(6_000)}`),
      // The token is not taken from the URL (access logs and proxies keep URLs).
      upgradeRequest(`/ws?access_token=${TOKEN}`),
      upgradeRequest('/ws', ['Authorization: Basic !!!']),
      upgradeRequest('/ws', ['Authorization: Bearer']),
      upgradeRequest('/ws', ['Authorization: Bearer wrong-token-0123456789']),
      upgradeRequest('/ws', [`Authorization: Basic ${Buffer.from('no-colon').toString('base64')}`]),
      upgradeRequest('/ws', ['Sec-WebSocket-Protocol: norn.bearer.!!!']),
      upgradeRequest('/ws', ['Sec-WebSocket-Protocol: ,,, norn']),
      upgradeRequest('//[', [`Sec-WebSocket-Protocol: norn, ${protocolToken('wrong-token-0123')}`]),
    ];
    for (const request of unauthenticated) {
      const answer = await rawRequest(port, request);
      expect(answer.status, request.split('\r\n')[0]).toBe(401);
      expect(answer.text).toMatch(/WWW-Authenticate: Bearer/);
    }
    const authenticated: Array<[string, number]> = [
      [upgradeRequest('//[', [BEARER]), 404],
      [upgradeRequest('*', [BEARER]), 404],
      [upgradeRequest('http://[::1', [BEARER]), 404],
      [upgradeRequest('/ws?%zz=%ff&lastEventId=[1]', [BEARER]), 101],
      [upgradeRequest('/ws', [BEARER, 'Sec-WebSocket-Protocol: a b']), 400],
      [upgradeRequest('/ws', [BEARER, 'Sec-WebSocket-Version: 99']), 400],
      [upgradeRequest('/ws', [`Sec-WebSocket-Protocol: norn, ${protocolToken(TOKEN)}`]), 101],
    ];
    for (const [request, status] of authenticated) {
      const answer = await rawRequest(port, request);
      expect(answer.status, request.split('\r\n')[0]).toBe(status);
    }
    // Clients that reset the connection right after asking (the answer then hits a dead socket).
    for (let i = 0; i < 20; i++) {
      await rawRequest(port, upgradeRequest(i % 2 ? '//[' : '/ws', i % 4 < 2 ? [] : [BEARER]), {
        reset: true,
        waitMs: 200,
      });
    }
    await expectServing(api, base);
  }, 90_000);

  it('authenticate browsers by subprotocol, answered with "norn", never echoing the token', async () => {
    const { api, base, port } = await startApi();
    const answer = await rawRequest(
      port,
      upgradeRequest('/ws', [`Sec-WebSocket-Protocol: ${protocolToken(TOKEN)}, norn`]),
    );
    expect(answer.status).toBe(101);
    expect(answer.text).toMatch(/\r\nSec-WebSocket-Protocol: norn\r\n/i);
    expect(answer.text).not.toContain('bearer');
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?app=${APP}`, [
      'norn',
      protocolToken(TOKEN),
    ]);
    const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.once('message', (d) => resolve(JSON.parse(String(d))));
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('norn');
    expect(first).toMatchObject({ type: 'ws.subscribed', appId: APP });
    ws.close();
    await expectServing(api, base);
  }, 60_000);

  it('malformed request lines and headers get 4xx from the server, which keeps serving', async () => {
    const { api, base, port } = await startApi();
    const requests: Array<[string, RegExp]> = [
      ['GARBAGE\r\n\r\n', /^4\d\d$/],
      ['\u0000\u0001\u0002 / HTTP/1.1\r\n\r\n', /^4\d\d$/],
      ['GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^404$/],
      ['GET / HTTP/1.1\r\nHost: [\r\nConnection: close\r\n\r\n', /^4\d\d$/],
      ['GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', /^400$/],
      [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(20_000)}\r\n\r\n`, /^431$/],
      ['GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n', /^(4|5)\d\d$/],
    ];
    for (const [request, status] of requests) {
      const answer = await rawRequest(port, request);
      expect(String(answer.status), JSON.stringify(request.slice(0, 40))).toMatch(status);
    }
    await expectServing(api, base);
  }, 60_000);
});

describe('/ws client messages', () => {
  it('every frame that is not a valid subscribe gets a ws.error naming the problem; over 64 KiB: 1009', async () => {
    const { api, base } = await startApi();
    const client = await connectWs(base, {}, { token: TOKEN });
    const send = async (frame: string | Buffer, binary = false) => {
      const before = client.control.length;
      client.ws.send(frame, { binary });
      return waitFor(
        async () => client.control[before],
        `an answer to ${String(frame).slice(0, 60)}`,
        10_000,
      );
    };
    const sub = (extra: object) => JSON.stringify({ type: 'subscribe', app: APP, ...extra });
    const frames: Array<[string, RegExp | string]> = [
      ['null', /JSON object/],
      ['42', /JSON object/],
      ['[]', /JSON object/],
      ['"subscribe"', /JSON object/],
      ['true', /JSON object/],
      ['{', /must be JSON/],
      ['{}', /unknown message type/],
      ['{"type":"nope"}', /unknown message type/],
      ['{"type":"subscribe\\u0000"}', /unknown message type/],
      ['{"type":"subscribe"}', /exactly one of "app" or "saga"/],
      [JSON.stringify({ type: 'subscribe', app: APP, saga: crypto.randomUUID() }), /exactly one/],
      ['{"type":"subscribe","app":1}', 'app'],
      ['{"type":"subscribe","app":"h7a\\u0000ws"}', 'app'],
      ['{"type":"subscribe","saga":"not-a-uuid"}', 'saga'],
      [sub({ lastEventId: [1] }), 'lastEventId'],
      [sub({ lastEventId: true }), 'lastEventId'],
      [sub({ lastEventId: 1e20 }), 'lastEventId'],
      [sub({ lastEventId: -1 }), 'lastEventId'],
      [sub({ lastEventId: 1.5 }), 'lastEventId'],
      [sub({ lastEventId: '1e20' }), 'lastEventId'],
      [sub({ lastEventId: '7\u0000' }), 'lastEventId'],
      [sub({ extra: 1 }), /extra/],
    ];
    for (const [frame, expected] of frames) {
      const answer = (await send(frame)) as {
        type: string;
        message: string;
        problems: Array<{ path: string }>;
      };
      expect(answer.type, frame).toBe('ws.error');
      if (typeof expected === 'string')
        expect(
          answer.problems.map((p) => p.path),
          frame,
        ).toContain(expected);
      else expect(answer.message, frame).toMatch(expected);
    }
    expect(((await send(Buffer.from([0, 1, 2]), true)) as { message: string }).message).toMatch(
      /binary/,
    );
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    expect(await send(sub({ lastEventId: 0 }))).toMatchObject({ type: 'ws.subscribed' });
    client.close();

    const queries: Array<Record<string, string>> = [
      { app: 'h7a\u0000ws' },
      { app: APP, lastEventId: '1e20' },
    ];
    for (const query of queries) {
      const c = await connectWs(base, query, { token: TOKEN });
      expect(c.control[0]).toMatchObject({ type: 'ws.error' });
      c.close();
    }
    // A frame over 64 KiB is refused: ws closes with 1009 (message too big).
    const big = await connectWs(base, {}, { token: TOKEN });
    big.ws.send(JSON.stringify({ type: 'subscribe', app: 'x'.repeat(64 * 1024) }));
    expect(await big.closed).toBe(1009);
    await expectServing(api, base);
  }, 60_000);
});
