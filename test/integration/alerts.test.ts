/**
 * Alert webhooks against local receivers: a healthy one that checks the signature as a GitHub
 * webhook receiver would (@octokit/webhooks-methods), one that answers 503 twice, one that never
 * answers, one that refuses. Deliveries run at once, are retried, and each ends as a row of
 * alert_deliveries that GET /api/alerts shows, with no secret in the table or the log.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { verify } from '@octokit/webhooks-methods';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createAlerter, type AlertPayload } from '../../src/shared/alerts.js';
import { loadConfig } from '../../src/shared/config.js';
import { isNornError } from '../../src/shared/errors.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testEnv, testSystem } from '../support/norn.js';

interface Received {
  at: number;
  body: string;
  headers: IncomingMessage['headers'];
}

/** A receiver on loopback; `answer` is called per request with how many came before. */
async function receiver(answer: (n: number) => number | 'hang') {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = received.length;
      received.push({
        at: Date.now(),
        body: Buffer.concat(chunks).toString('utf8'),
        headers: req.headers,
      });
      const status = answer(n);
      if (status === 'hang') return;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // The path is the credential, as in a Slack incoming webhook.
  const token = randomBytes(12).toString('hex');
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}/services/T0/B0/${token}`, token, received };
}

function capturingLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

const SECRET = 'a-long-enough-alert-secret';
const drift = {
  kind: 'drift.detected' as const,
  subject: 'stack:platform',
  summary: '1 to change (aws_instance.web)',
  details: { changes: ['aws_instance.web'] },
  runId: '6f1c2d3e-0000-4000-8000-000000000001',
  fingerprint: 'platform:abc123',
};

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

describe('alerts', () => {
  it('delivers to every endpoint at once, retries, signs, and records each without its secret', async () => {
    const healthy = await receiver(() => 200);
    const flaky = await receiver((n) => (n < 2 ? 503 : 200));
    const slow = await receiver(() => 'hang');
    const { log, lines } = capturingLog();
    const alerter = createAlerter({
      // The slow one first: delivered one after another, the healthy one would wait for it.
      urls: [slow.url, flaky.url, healthy.url],
      secret: SECRET,
      db: tdb.db,
      log,
      retries: 2,
      minTimeoutMs: 20,
      timeoutMs: 600,
    });

    const started = Date.now();
    const results = await alerter.send(drift);
    const ended = Date.now();

    // The healthy endpoint got its POST before the slow one's first attempt even timed out.
    expect(healthy.received).toHaveLength(1);
    expect(healthy.received[0]!.at - started).toBeLessThan(600);
    expect(ended - started).toBeGreaterThanOrEqual(3 * 600);

    const got = healthy.received[0]!;
    expect(await verify(SECRET, got.body, String(got.headers['x-norn-signature-256']))).toBe(true);
    expect(
      await verify(
        'another-secret-entirely',
        got.body,
        String(got.headers['x-norn-signature-256']),
      ),
    ).toBe(false);
    const payload = JSON.parse(got.body) as AlertPayload;
    expect(payload).toMatchObject({
      text: ':rotating_light: drift detected in stack platform: 1 to change (aws_instance.web)',
      ...drift,
    });
    expect(Math.floor(Date.parse(payload.ts) / 1000)).toBe(Number(got.headers['x-norn-timestamp']));
    expect(flaky.received).toHaveLength(3);
    expect(slow.received).toHaveLength(3);

    expect(results.map((r) => [r.ok, r.attempts, r.httpStatus])).toEqual([
      [false, 3, undefined],
      [true, 3, 200],
      [true, 1, 200],
    ]);
    expect(results[0]!.error).toMatch(/no answer within 600 ms/);

    const { rows } = await tdb.db.query(
      'SELECT kind, subject, url_host, status, attempts, http_status, error, payload FROM alert_deliveries ORDER BY url_host',
    );
    expect(rows).toHaveLength(3);
    const byHost = new Map(rows.map((r) => [r.url_host as string, r]));
    const host = (u: string) => new URL(u).host;
    expect(byHost.get(host(flaky.url))).toMatchObject({
      status: 'ok',
      attempts: 3,
      http_status: 200,
      error: null,
    });
    expect(byHost.get(host(healthy.url))).toMatchObject({
      status: 'ok',
      attempts: 1,
      kind: 'drift.detected',
    });
    expect(byHost.get(host(slow.url))).toMatchObject({
      status: 'failed',
      attempts: 3,
      http_status: null,
    });
    expect(byHost.get(host(slow.url))!.error).toMatch(/no answer within 600 ms/);
    expect(byHost.get(host(healthy.url))!.payload).toMatchObject({
      text: payload.text,
      subject: 'stack:platform',
    });

    const everything = JSON.stringify(rows) + lines.join('');
    expect(lines.join('')).toMatch(/alert delivery failed/);
    for (const r of [healthy, flaky, slow]) {
      expect(everything).not.toContain(r.token);
      expect(everything).not.toContain('/services/T0');
    }
    expect(everything).not.toContain(SECRET);
  });

  it('does not retry a refusal (404), retries 429, and sends no signature without a secret', async () => {
    const gone = await receiver(() => 404);
    const busy = await receiver((n) => (n === 0 ? 429 : 204));
    const { log } = capturingLog();
    const alerter = createAlerter({
      urls: [gone.url, busy.url],
      db: tdb.db,
      log,
      retries: 3,
      minTimeoutMs: 10,
    });
    const results = await alerter.send({
      kind: 'release.failed',
      subject: 'app:web',
      summary: 'health-wait failed',
    });
    expect(results.map((r) => [r.ok, r.attempts, r.httpStatus, r.error])).toEqual([
      [false, 1, 404, 'HTTP 404'],
      [true, 2, 204, undefined],
    ]);
    expect(gone.received[0]!.headers['x-norn-signature-256']).toBeUndefined();
    expect(JSON.parse(gone.received[0]!.body)).toMatchObject({
      text: ':x: release failed in app web: health-wait failed',
    });
  });

  it('takes the URL out of an error that quotes it (credentials in the URL)', async () => {
    const { log, lines } = capturingLog();
    const url = 'http://norn:s3cret-pass@127.0.0.1:9/services/T0/B0/tok3n-path';
    const [result] = await createAlerter({ urls: [url], db: tdb.db, log, retries: 1 }).send(drift);
    expect(result).toMatchObject({ ok: false, urlHost: '127.0.0.1:9', attempts: 1 });
    expect(result!.error).toMatch(/includes credentials/);
    const { rows } = await tdb.db.query(
      "SELECT * FROM alert_deliveries WHERE url_host = '127.0.0.1:9'",
    );
    const everything = JSON.stringify(rows) + JSON.stringify(result) + lines.join('');
    for (const secret of ['s3cret-pass', 'tok3n-path', '/services/T0'])
      expect(everything).not.toContain(secret);
  });

  it('escapes Slack markup and keeps the text on one line', async () => {
    const ok = await receiver(() => 200);
    const alerter = createAlerter({ urls: [ok.url], db: tdb.db, log: capturingLog().log });
    await alerter.send({
      kind: 'verify.failed',
      subject: 'app:api',
      summary: 'http <x> & y\nsecond line',
    });
    expect(JSON.parse(ok.received[0]!.body).text).toBe(
      ':x: verify failed in app api: http &lt;x&gt; &amp; y second line',
    );
  });

  it('shows recent deliveries, newest first, at GET /api/alerts behind the bearer token', async () => {
    const token = 'an-api-token-of-at-least-32-characters!!';
    const system = testSystem(testEnv(tdb.url, { NORN_API_TOKEN: token }));
    onTestFinished(() => system.close());
    const ok = await receiver(() => 200);
    await createAlerter({ urls: [ok.url], db: tdb.db, log: capturingLog().log }).send({
      kind: 'deploy.reverted',
      subject: 'app:shop',
      summary: 'reverted to release 4',
    });
    const app = system.createApi();
    expect((await app.request('/api/alerts')).status).toBe(401);
    const res = await app.request('/api/alerts?limit=2', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    const { deliveries } = (await res.json()) as { deliveries: Array<Record<string, unknown>> };
    expect(deliveries).toHaveLength(2);
    expect(deliveries[0]).toMatchObject({
      kind: 'deploy.reverted',
      subject: 'app:shop',
      urlHost: new URL(ok.url).host,
      status: 'ok',
      attempts: 1,
      httpStatus: 200,
    });
    expect(JSON.stringify(deliveries)).not.toContain(ok.token);
    const bad = await app.request('/api/alerts?limit=x', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(bad.status).toBe(400);
  });

  it('reads NORN_ALERT_WEBHOOK_URLS as a list and names a bad entry without showing it', () => {
    const config = loadConfig({
      NORN_ALERT_WEBHOOK_URLS:
        'https://hooks.slack.com/services/T/B/x, https://alerts.example.com/h',
      NORN_ALERT_SECRET: SECRET,
    });
    expect(config.alerts).toEqual({
      urls: ['https://hooks.slack.com/services/T/B/x', 'https://alerts.example.com/h'],
      secret: SECRET,
    });
    expect(loadConfig({}).alerts).toEqual({ urls: [], secret: undefined });
    let err: unknown;
    try {
      loadConfig({ NORN_ALERT_WEBHOOK_URLS: 'https://ok.example.com,ftp://tok3n-in-here' });
    } catch (e) {
      err = e;
    }
    expect(isNornError(err) && err.code).toBe('CONFIG_INVALID');
    expect((err as Error).message).toMatch(
      /NORN_ALERT_WEBHOOK_URLS: entry 2 is not an http\(s\) URL/,
    );
    expect((err as Error).message).not.toContain('tok3n');
  });
});
