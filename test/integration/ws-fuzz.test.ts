/**
 * /ws under generated bad input (fast-check): upgrade requests with hostile targets, queries and
 * headers, then thousands of frames of every bad shape on live connections (malformed and deeply
 * nested JSON, wrong types, NUL bytes and unicode, huge numbers, binary frames, invalid UTF-8,
 * frames over the limit). The relay must answer each frame with `ws.subscribed` or `ws.error`
 * (or close with a protocol code for frames ws itself refuses), never 5xx an upgrade, keep its
 * memory, and stay up: a real subscription still gets a run's events afterwards.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { rawRequest, upgradeRequest } from '../support/raw-http.js';
import { registerApp, useRunningApi, waitFor, waitForRun } from '../support/norn.js';
import { connectWs } from '../support/ws.js';

const TOKEN = 'ws-fuzz-token-0123456789abcdef';
const ctx = useRunningApi({ NORN_API_TOKEN: TOKEN });
const FRAMES = Number(process.env.FUZZ_WS_FRAMES ?? 5_000);
const UPGRADES = Number(process.env.FUZZ_WS_UPGRADES ?? 300);

const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '\u0000',
    'ws-fuzz\u0000',
    '../../etc/passwd',
    '9'.repeat(400),
    '1e309',
    '-1',
    '💥'.repeat(200),
    'ws-fuzz',
    '00000000-0000-0000-0000-000000000000',
    "'; DROP TABLE events; --",
  ),
);

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constant(Number.MAX_SAFE_INTEGER + 2),
  fc.constant(-1),
  nasty,
);
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(nasty, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Subscribe messages with some fields replaced by bad values. */
const subscribe = fc.record(
  {
    type: fc.oneof(fc.constant('subscribe'), nasty),
    app: fc.oneof(fc.constant('ws-fuzz'), scalar, jsonValue),
    saga: fc.oneof(fc.constant('00000000-0000-0000-0000-000000000000'), scalar, jsonValue),
    lastEventId: fc.oneof(scalar, jsonValue),
  },
  { requiredKeys: [] },
);

const frame = fc.oneof(
  subscribe.map((m) => ({ data: JSON.stringify(m), binary: false })),
  jsonValue.map((v) => ({ data: JSON.stringify(v), binary: false })),
  nasty.map((s) => ({ data: s, binary: false })),
  fc
    .integer({ min: 100, max: 5_000 })
    .map((n) => ({ data: `${'['.repeat(n)}${']'.repeat(n)}`, binary: false })),
  fc.constant({ data: '{"type":"subscribe","app":', binary: false }),
  fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: true })),
);

/** A live connection that counts the answers to what it sends. */
async function open() {
  const ws = new WebSocket(`${ctx.api.url.replace(/^http/, 'ws')}/ws`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const answers: Array<{ type?: unknown }> = [];
  const sent = { n: 0 };
  let closeCode: number | undefined;
  ws.on('message', (data) => answers.push(JSON.parse(String(data))));
  ws.on('close', (code) => (closeCode = code));
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade ${res.statusCode}`)));
  });
  return { ws, answers, sent, closed: () => closeCode };
}

describe('/ws under generated bad input', () => {
  it(`answers ${UPGRADES} hostile upgrade requests below 500`, async () => {
    await registerApp(ctx.system, 'ws-fuzz');
    const target = fc.oneof(
      fc.constantFrom('/ws', '/ws?', '/ws?app=', '//[', '/ws/../ws', '/ws#x', '*', '/ws?app=%00'),
      nasty.map((s) => `/ws?app=${encodeURIComponent(s)}&lastEventId=${encodeURIComponent(s)}`),
      nasty.map((s) => `/ws?${s.replace(/[\r\n ]/g, '')}`),
    );
    const header = fc.constantFrom(
      `Authorization: Bearer ${TOKEN}`,
      'Authorization: Bearer wrong',
      'Authorization: Basic !!!',
      'Sec-WebSocket-Protocol: norn, norn.bearer.%%%',
      `Sec-WebSocket-Protocol: norn, norn.bearer.${Buffer.from(TOKEN).toString('base64url')}`,
      'Sec-WebSocket-Version: 99',
    );
    await fc.assert(
      fc.asyncProperty(target, fc.array(header, { maxLength: 3 }), async (t, headers) => {
        const answer = await rawRequest(ctx.api.port, upgradeRequest(t, headers), {
          waitMs: 1_000,
        });
        // 101 (then the socket is dropped here), or a refusal; never a server error.
        expect(answer.status === 0 || answer.status < 500).toBe(true);
      }),
      { numRuns: UPGRADES },
    );
  });

  it(`answers ${FRAMES} generated frames and keeps serving`, async () => {
    const before = process.memoryUsage().heapUsed;
    let conn = await open();
    let sent = 0;
    let reopened = 0;
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        if (conn.closed() !== undefined) {
          // Only frames ws itself refuses (invalid UTF-8: 1007) may end a connection.
          expect([1007]).toContain(conn.closed());
          conn = await open();
          reopened++;
        }
        conn.ws.send(f.data, { binary: f.binary });
        conn.sent.n++;
        sent++;
      }),
      { numRuns: FRAMES },
    );
    // Every frame on the last connection is answered, once, with a confirmation or an error
    // (unless a frame ws itself refuses ended it, as above).
    await waitFor(
      async () => conn.closed() !== undefined || conn.answers.length >= conn.sent.n,
      `answers to ${conn.sent.n} frames (got ${conn.answers.length})`,
      30_000,
    );
    if (conn.closed() === undefined) expect(conn.answers).toHaveLength(conn.sent.n);
    else expect([1007]).toContain(conn.closed());
    for (const a of conn.answers) expect(['ws.subscribed', 'ws.error']).toContain(a.type);
    expect(sent).toBe(FRAMES);

    // A frame over the 64 KiB limit closes that connection (1009), and nothing else.
    const big = await open();
    big.ws.send('x'.repeat(70 * 1024));
    await new Promise((r) => setTimeout(r, 300));
    expect(big.closed()).toBe(1009);

    const after = process.memoryUsage().heapUsed;
    expect(after - before).toBeLessThan(200 * 1024 * 1024);
    conn.ws.close();

    // Still serving: a real subscription follows a run to its end.
    const client = await connectWs(ctx.api.url, { app: 'ws-fuzz' }, { token: TOKEN });
    const run = await ctx.system.runs.request({ appId: 'ws-fuzz', pipeline: 'short', params: {} });
    await waitForRun(ctx.system, run.deploymentId);
    await client.waitForType('forge.completed');
    client.close();
    expect(reopened).toBeLessThan(FRAMES);
  });
});
