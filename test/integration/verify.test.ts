/**
 * Verify checks against real servers on loopback: an HTTP endpoint that comes up late, one that
 * never answers what is expected, pods on the strict fake Kubernetes API (a ready one and a
 * crash-looping one), and a fake GitLab whose runners list needs PRIVATE-TOKEN and, as GitLab's
 * does, leaves each runner's tags to GET /runners/:id.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { runChecks, type VerifyCheck, type VerifyDeps } from '../../src/gitops/verify.js';
import { createKubeConnection, loadKubeConfig } from '../../src/targets/kubernetes/connection.js';
import { freePort } from '../support/cli/expect-output.js';
import { startFakeKube, type FakeKube } from '../support/kube/server.js';

async function serve(handler: RequestListener, port = 0): Promise<{ url: string; port: number }> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const actual = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${actual}`, port: actual };
}

function deps(extra: Partial<VerifyDeps> = {}): VerifyDeps & { lines: string[] } {
  const lines: string[] = [];
  return {
    env: {},
    signal: AbortSignal.timeout(30_000),
    log: (l) => lines.push(l),
    lines,
    ...extra,
  };
}

describe('http checks', () => {
  it('pass once the server comes up and answers 200 with the body', async () => {
    const port = await freePort();
    let served = 0;
    setTimeout(() => {
      void serve((_req, res) => {
        served += 1;
        if (served < 2) res.writeHead(503).end('warming up');
        else res.writeHead(200).end('status: ready');
      }, port);
    }, 400);
    const url = `http://127.0.0.1:${port}/healthz`;
    const out = await runChecks(
      [{ http: { url, contains: 'ready', deadline: '5s', interval: '100ms' } }],
      deps(),
    );
    expect(out.ok).toBe(true);
    expect(out.results[0]).toMatchObject({ check: `http ${url}`, ok: true });
    expect(out.results[0]!.attempts).toBeGreaterThanOrEqual(3); // refused, 503, then 200
  });

  it('fail at the deadline with the last status and body, and every check still runs', async () => {
    const app = await serve((req, res) => {
      if (req.url === '/ok') res.writeHead(204).end();
      else res.writeHead(200).end('status: starting');
    });
    const refused = `http://127.0.0.1:${await freePort()}/`;
    const d = deps();
    const started = Date.now();
    const out = await runChecks(
      [
        {
          http: { url: `${app.url}/healthz`, contains: 'ready', deadline: '1s', interval: '200ms' },
        },
        { http: { url: `${app.url}/healthz`, status: 201, deadline: '500ms', interval: '200ms' } },
        { http: { url: refused, deadline: '500ms', interval: '200ms' } },
        { http: { url: `${app.url}/ok`, status: 204, deadline: '1s' } },
      ],
      d,
    );
    expect(out.ok).toBe(false);
    const [body, status, down, ok] = out.results;
    expect(body).toMatchObject({ ok: false });
    expect(body!.detail).toBe('HTTP 200 but the body does not contain "ready": status: starting');
    expect(body!.durationMs).toBeGreaterThanOrEqual(1_000);
    expect(body!.attempts).toBeGreaterThanOrEqual(4);
    expect(status!.detail).toBe('HTTP 200 (expected 201): status: starting');
    expect(down!.detail).toMatch(/ECONNREFUSED/);
    expect(ok).toMatchObject({ ok: true, attempts: 1 });
    // At once, not one after another.
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(d.lines.join('\n')).toMatch(/FAILED: HTTP 200 but the body does not contain/);
  });

  it('fails a check with a bad duration without trying it', async () => {
    const out = await runChecks(
      [{ http: { url: 'http://127.0.0.1:1/', deadline: 'soon' } }],
      deps(),
    );
    expect(out.results[0]).toMatchObject({ ok: false, attempts: 0 });
    expect(out.results[0]!.detail).toMatch(/"soon" is not a valid duration/);
  });
});

describe('pods checks', () => {
  let kube: FakeKube;
  beforeAll(async () => {
    kube = await startFakeKube({ tickMs: 50 });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const pod = (name: string, app: string, image: string) =>
      core.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: { name, labels: { app } },
          spec: { containers: [{ name: 'web', image }] },
        },
      });
    await pod('good-1', 'good', 'registry.test/good:v1');
    await pod('good-2', 'good', 'registry.test/good:v1');
    await pod('bad-1', 'bad', 'registry.test/crashloop:v1');
    await pod('mixed-ok', 'mixed', 'registry.test/good:v1');
    await pod('mixed-crash', 'mixed', 'registry.test/crashloop:v1');
  });
  afterAll(async () => {
    await kube?.close();
  });

  const connection = () =>
    createKubeConnection(loadKubeConfig({ KUBECONFIG: kube.kubeconfigPath, HOME: '/nonexistent' }));
  const pods = (selector: string): VerifyCheck => ({
    pods: { namespace: 'default', selector, deadline: '1500ms', interval: '100ms' },
  });

  it('pass when every selected pod is Ready, and fail naming the crash-looping ones', async () => {
    const out = await runChecks(
      [pods('app=good'), pods('app=mixed'), pods('app=bad'), pods('app=none')],
      deps({ kube: connection }),
    );
    expect(out.ok).toBe(false);
    const [good, mixed, bad, none] = out.results;
    expect(good).toMatchObject({
      check: 'pods default app=good',
      ok: true,
      detail: '2 of 2 pods ready',
    });
    expect(mixed!.ok).toBe(false);
    expect(mixed!.detail).toMatch(/^1 of 2 pods not ready: mixed-crash \(web: CrashLoopBackOff/);
    expect(mixed!.detail).not.toContain('mixed-ok');
    expect(bad!.detail).toMatch(/bad-1 \(web: CrashLoopBackOff/);
    expect(bad!.durationMs).toBeGreaterThanOrEqual(1_500);
    expect(none!.detail).toBe('no pods match app=none in namespace default');
    expect(kube.requests.some((r) => r.includes('labelSelector=app%3Dgood'))).toBe(true);
  });

  it('fails clearly where there is no kubernetes connection', async () => {
    const out = await runChecks([pods('app=good')], deps());
    expect(out.results[0]).toMatchObject({ ok: false, attempts: 0 });
    expect(out.results[0]!.detail).toMatch(/needs the kubernetes target/);
  });
});

describe('runner checks', () => {
  const token = `glpat-${randomBytes(10).toString('hex')}`;
  interface FakeRunner {
    id: number;
    description: string;
    online: boolean;
    paused: boolean;
    tags: string[];
  }

  /** GitLab's shapes: the list (filtered by tag_list) has no tags; /runners/:id has tag_list. */
  async function fakeGitlab(runners: FakeRunner[]) {
    const seen: string[] = [];
    const { url } = await serve((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      seen.push(`${u.pathname}${u.search}`);
      const send = (code: number, body: unknown) =>
        res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.headers['private-token'] !== token) return send(401, { message: '401 Unauthorized' });
      const summary = (r: FakeRunner) => ({
        id: r.id,
        description: r.description,
        ip_address: null,
        active: !r.paused,
        paused: r.paused,
        is_shared: false,
        runner_type: 'project_type',
        name: 'gitlab-runner',
        online: r.online,
        status: r.online ? 'online' : 'offline',
      });
      if (u.pathname === '/api/v4/runners') {
        const wanted = u.searchParams.get('tag_list')?.split(',') ?? [];
        return send(
          200,
          runners.filter((r) => wanted.every((t) => r.tags.includes(t))).map(summary),
        );
      }
      const m = /^\/api\/v4\/runners\/(\d+)$/.exec(u.pathname);
      const r = m && runners.find((x) => x.id === Number(m[1]));
      if (r)
        return send(200, { ...summary(r), tag_list: r.tags, locked: false, run_untagged: false });
      return send(404, { message: '404 Not found' });
    });
    return { url: `${url}/api/v4/runners`, seen };
  }

  const runner = (url: string, tags: string[], tokenEnv = 'GITLAB_TOKEN'): VerifyCheck => ({
    runner: { url, tokenEnv, tags, deadline: '1500ms', interval: '100ms' },
  });

  it('passes once a runner with every tag is online and unpaused, never showing the token', async () => {
    const runners: FakeRunner[] = [
      { id: 7, description: 'old', online: true, paused: true, tags: ['docker', 'deploy'] },
      { id: 8, description: 'new', online: false, paused: false, tags: ['docker', 'deploy', 'x'] },
      { id: 9, description: 'other', online: true, paused: false, tags: ['docker'] },
    ];
    const gitlab = await fakeGitlab(runners);
    setTimeout(() => (runners[1]!.online = true), 400);
    const d = deps({ env: { GITLAB_TOKEN: token } });
    const out = await runChecks([runner(gitlab.url, ['docker', 'deploy'])], d);
    expect(out.results[0]).toMatchObject({
      check: `runner ${gitlab.url} [docker, deploy]`,
      ok: true,
      detail: 'runner #8 new is online with tags docker, deploy',
    });
    expect(out.results[0]!.attempts).toBeGreaterThan(1);
    expect(d.lines.join('\n')).toMatch(/#7 old paused, #8 new offline/);
    expect(gitlab.seen).toContain('/api/v4/runners?tag_list=docker%2Cdeploy');
    expect(gitlab.seen).toContain('/api/v4/runners/8');
    expect(JSON.stringify(out) + d.lines.join('')).not.toContain(token);
  });

  it('fails at the deadline saying what each runner lacks, and at once on a refused or missing token', async () => {
    const gitlab = await fakeGitlab([
      { id: 9, description: 'other', online: true, paused: false, tags: ['docker'] },
    ]);
    const d = deps({ env: { GITLAB_TOKEN: token, WRONG_TOKEN: 'glpat-not-the-one' } });
    const out = await runChecks(
      [
        {
          runner: {
            url: `${gitlab.url}?per_page=100`,
            tokenEnv: 'GITLAB_TOKEN',
            tags: ['gpu'],
            deadline: '800ms',
            interval: '100ms',
          },
        },
        runner(gitlab.url, ['docker'], 'WRONG_TOKEN'),
        runner(gitlab.url, ['docker'], 'NO_SUCH_TOKEN'),
      ],
      d,
    );
    expect(out.ok).toBe(false);
    const [gpu, wrong, missing] = out.results;
    expect(gpu!.detail).toBe('no online, unpaused runner has tags gpu: no runners listed');
    expect(gpu!.durationMs).toBeGreaterThanOrEqual(800);
    expect(wrong).toMatchObject({ ok: false, attempts: 1 });
    expect(wrong!.detail).toMatch(/^HTTP 401: the token was refused/);
    expect(missing).toMatchObject({ ok: false, attempts: 0 });
    expect(missing!.detail).toBe("the runner check's token variable NO_SUCH_TOKEN is not set");
    expect(d.lines.join('')).not.toContain('glpat-not-the-one');
  });

  it('uses tags the list already carries (tag_list or tags) without reading details', async () => {
    const { url } = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify([
          { id: 1, online: true, paused: false, tags: ['a'] },
          { id: 2, status: 'online', active: true, tag_list: ['a', 'b'] },
        ]),
      );
    });
    const out = await runChecks(
      [{ runner: { url: `${url}/api/v4/runners`, tags: ['a', 'b'], deadline: '1s' } }],
      deps(),
    );
    expect(out.results[0]).toMatchObject({
      ok: true,
      attempts: 1,
      detail: 'runner #2 is online with tags a, b',
    });
  });
});
