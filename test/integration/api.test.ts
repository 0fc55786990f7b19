/** The HTTP api in-process (Hono's app.request), on real Redis and PostgreSQL, with a worker. */
import { describe, expect, it } from 'vitest';
import { useApiSystem, waitFor, waitForRun } from '../support/norn.js';

const TOKEN = 'test-token-0123456789abcdef';
const ctx = useApiSystem({ NORN_API_TOKEN: TOKEN });

const auth = { authorization: `Bearer ${TOKEN}` };
const call = (
  method: string,
  path: string,
  body?: string | object,
  headers: Record<string, string> = {},
) =>
  ctx.app.request(path, {
    method,
    headers: {
      ...auth,
      ...(typeof body === 'object' ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });

const SPEC = `
name: web-app
repo:
  url: https://example.invalid/acme/web.git
processes:
  web:
    port: 3000
    health: { path: /healthz }
env:
  DATABASE_PASSWORD: hunter2-very-secret
deployPolicy:
  concurrency: queue
`;

describe('auth', () => {
  it('needs the bearer token on /api and /admin/queues, not on /healthz', async () => {
    expect((await ctx.app.request('/api/apps')).status).toBe(401);
    expect(
      (
        await ctx.app.request('/api/apps', {
          headers: { authorization: 'Bearer wrong-token-0123456789' },
        })
      ).status,
    ).toBe(401);
    expect((await call('GET', '/api/apps')).status).toBe(200);
    expect((await ctx.app.request('/healthz')).status).toBe(200);
    expect((await ctx.app.request('/admin/queues')).status).toBe(401);
    expect((await ctx.app.request('/admin/queues/api/queues')).status).toBe(401);
    const basic = `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`;
    const board = await ctx.app.request('/admin/queues', { headers: { authorization: basic } });
    expect(board.status).toBe(200);
    expect(await board.text()).toContain('<html');
    const queues = await ctx.app.request('/admin/queues/api/queues', { headers: auth });
    expect(queues.status).toBe(200);
    expect(JSON.stringify(await queues.json())).toContain('steps');
  });

  it('reports readiness of PostgreSQL and Redis', async () => {
    const res = await ctx.app.request('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, postgres: 'ok', redis: 'ok' });
  });
});

describe('apps', () => {
  it('registers an app from YAML (201), updates it (200), and never returns env values', async () => {
    const created = await call('POST', '/api/apps', SPEC, { 'content-type': 'application/yaml' });
    expect(created.status).toBe(201);
    const body = await created.json();
    expect(body.app.id).toBe('web-app');
    expect(JSON.stringify(body)).not.toContain('hunter2');
    expect(body.app.spec.env).toEqual({ DATABASE_PASSWORD: '[hidden]' });
    expect(body.app.spec.repo.branch).toBeUndefined(); // no branch named: the default branch, never an assumed main
    expect((await call('POST', '/api/apps', SPEC)).status).toBe(200);
    const listed = await (await call('GET', '/api/apps')).json();
    expect(JSON.stringify(listed)).not.toContain('hunter2');
  });

  it('accepts JSON too', async () => {
    const res = await call('POST', '/api/apps', {
      name: 'json-app',
      processes: { worker: { command: 'run' } },
    });
    expect(res.status).toBe(201);
  });

  it('answers a bad spec with 400 and every problem as {path, message}', async () => {
    const res = await call(
      'POST',
      '/api/apps',
      'name: Bad_Name\nprocesses:\n  web:\n    port: 70000\nprocesess: {}\n',
      { 'content-type': 'application/yaml' },
    );
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.code).toBe('SPEC_INVALID');
    const paths = error.problems.map((p: { path: string }) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['name', 'processes.web.port', 'procesess']));
    expect(error.problems.find((p: { path: string }) => p.path === 'procesess').message).toMatch(
      /unknown key/,
    );
    expect(
      (await call('POST', '/api/apps', 'name: [unclosed', { 'content-type': 'application/yaml' }))
        .status,
    ).toBe(400);
  });

  it('404s for an unknown app', async () => {
    expect((await call('GET', '/api/apps/nope')).status).toBe(404);
    expect((await call('POST', '/api/apps/nope/deploy', {})).status).toBe(404);
  });
});

describe('deployments', () => {
  it('enqueues a deploy and answers at once with {deploymentId, sagaId}; the run and its events are readable', async () => {
    await call('POST', '/api/apps', SPEC, { 'content-type': 'application/yaml' });
    const t0 = Date.now();
    const res = await call('POST', '/api/apps/web-app/deploy', { ref: 'v1.2.3' });
    expect(res.status).toBe(202);
    expect(Date.now() - t0).toBeLessThan(2_000);
    const { deploymentId, sagaId } = await res.json();
    expect(deploymentId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sagaId).toMatch(/^[0-9a-f-]{36}$/);
    await waitForRun(ctx.system, deploymentId);

    const detail = await (await call('GET', `/api/deployments/${deploymentId}`)).json();
    expect(detail.deployment).toMatchObject({
      status: 'succeeded',
      params: { ref: 'v1.2.3' },
      pipelineVersion: '1',
    });
    expect(detail.steps).toHaveLength(9);

    const saga = await (await call('GET', `/api/sagas/${sagaId}/events`)).json();
    expect(saga.events[0].type).toBe('deploy.queued');
    expect(saga.events.at(-1).type).toBe('deploy.completed');
    const ids = saga.events.map((e: { id: number }) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b)); // oldest first

    const page1 = await (await call('GET', '/api/apps/web-app/events?limit=5')).json();
    expect(page1.events).toHaveLength(5);
    expect(page1.events[0].type).toBe('deploy.completed'); // newest first
    const page2 = await (
      await call('GET', `/api/apps/web-app/events?limit=5&before=${page1.next.before}`)
    ).json();
    expect(page2.events[0].id).toBeLessThan(page1.events[4].id);
    expect(page2.events.map((e: { id: number }) => e.id)).not.toContain(page1.events[4].id);
  });

  it('serves what a step wrote while it ran', async () => {
    const { deploymentId } = await (await call('POST', '/api/apps/web-app/deploy', {})).json();
    await waitForRun(ctx.system, deploymentId);
    const log = await call('GET', `/api/deployments/${deploymentId}/steps/s3/log`);
    expect(log.status).toBe(200);
    expect(await log.json()).toMatchObject({ step: 's3', lines: ['s3 says hello'] });
    expect((await call('GET', `/api/deployments/${deploymentId}/steps/nope/log`)).status).toBe(404);
  });

  it('refuses refs that look like options', async () => {
    const res = await call('POST', '/api/apps/web-app/deploy', {
      ref: '--upload-pack=touch /tmp/x',
    });
    expect(res.status).toBe(400);
    expect((await call('POST', '/api/apps/web-app/deploy', '{not json')).status).toBe(400);
  });

  it('cancels and resumes over HTTP; reject policy answers 409 with the running run', async () => {
    await call('POST', '/api/apps', {
      name: 'rej-app',
      processes: { web: { port: 1 } },
      deployPolicy: { concurrency: 'reject' },
    });
    const first = await (
      await call('POST', '/api/apps/rej-app/deploy', { ref: 'sleep-10000' })
    ).json();
    const second = await call('POST', '/api/apps/rej-app/deploy', {});
    expect(second.status).toBe(409);
    expect((await second.json()).error).toMatchObject({
      code: 'CONFLICT',
      runningDeploymentId: first.deploymentId,
    });

    const view = await (await call('GET', '/api/apps/rej-app')).json();
    expect(view.lease.holder).toMatchObject({
      deploymentId: first.deploymentId,
      status: 'running',
    });
    expect(view.lease.holder.holder).toEqual(expect.any(String));

    const cancel = await call('POST', `/api/runs/${first.deploymentId}/cancel`);
    expect(cancel.status).toBe(202);
    expect((await waitForRun(ctx.system, first.deploymentId, undefined, 5_000)).status).toBe(
      'cancelled',
    );
    const resumed = await call('POST', `/api/runs/${first.deploymentId}/resume`);
    expect(resumed.status).toBe(202);
    const body = await resumed.json();
    expect(body.resumedFrom).toBe(first.deploymentId);
    const steps = await (await call('GET', `/api/runs/${body.deploymentId}`)).json();
    expect(steps.run.resumedFrom).toBe(first.deploymentId);
    // s1 completed before the cancel, so the resumed run skips it (and s2 sleeps again: cancel it then).
    await waitFor(
      async () => (await ctx.system.store.steps(body.deploymentId))[1]?.status === 'running',
      's2 of the resumed run to run',
    );
    await call('POST', `/api/runs/${body.deploymentId}/cancel`);
    expect((await waitForRun(ctx.system, body.deploymentId, undefined, 5_000)).status).toBe(
      'cancelled',
    );
    const again = await (await call('GET', `/api/runs/${body.deploymentId}`)).json();
    expect(again.steps[0]).toMatchObject({ name: 's1', status: 'skipped' });
    expect((await call('POST', `/api/runs/${first.deploymentId}/cancel`)).status).toBe(202);
    expect(
      (await call('POST', '/api/runs/00000000-0000-0000-0000-000000000000/cancel')).status,
    ).toBe(404);
    expect((await call('GET', '/api/runs/not-a-uuid')).status).toBe(404);
  });

  it('names runs runs: one id per run, under /api/runs and its earlier names', async () => {
    const accepted = await (await call('POST', '/api/apps/web-app/deploy', { ref: 'v9' })).json();
    // One id: the run's, also its sagaId and (for older clients) its deploymentId.
    expect(accepted.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(accepted).toMatchObject({ deploymentId: accepted.runId, sagaId: accepted.runId });
    await waitForRun(ctx.system, accepted.runId);

    const run = await (await call('GET', `/api/runs/${accepted.runId}`)).json();
    expect(run.run).toMatchObject({
      id: accepted.runId,
      sagaId: accepted.runId,
      status: 'succeeded',
    });
    expect(run.steps.map((s: { status: string }) => s.status)).toEqual(Array(9).fill('complete'));
    const events = await (await call('GET', `/api/runs/${accepted.runId}/events`)).json();
    expect(events.runId).toBe(accepted.runId);
    expect(events.events.map((e: { type: string }) => e.type)).toContain('deploy.completed');
    for (const e of events.events)
      expect(e).toMatchObject({ runId: accepted.runId, sagaId: accepted.runId });
    const log = await (await call('GET', `/api/runs/${accepted.runId}/steps/s3/log`)).json();
    expect(log).toMatchObject({ runId: accepted.runId, step: 's3', lines: ['s3 says hello'] });
    const cancel = await call('POST', `/api/runs/${accepted.runId}/cancel`);
    expect(await cancel.json()).toMatchObject({ runId: accepted.runId, status: 'succeeded' });

    // The earlier names answer the same run in their earlier shapes.
    const alias = await (await call('GET', `/api/deployments/${accepted.runId}`)).json();
    expect(alias.deployment).toEqual(run.run);
    const saga = await (await call('GET', `/api/sagas/${accepted.runId}/events`)).json();
    expect(saga.events).toEqual(events.events);
    const missing = await call('GET', '/api/runs/00000000-0000-0000-0000-000000000000');
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.message).toBe(
      'run 00000000-0000-0000-0000-000000000000 not found',
    );
  });
});
