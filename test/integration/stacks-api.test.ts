/**
 * /api/stacks and /api/plans over the real api and PostgreSQL: register (YAML and JSON), list,
 * read without the secret, update, delete, runs of the stack's scope, drift state and plans.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { registerApp, useApiSystem } from '../support/norn.js';
import { aStack, STACK_YAML } from '../support/stacks.js';

const TOKEN = 'test-token-stacks-0123456789';
const ctx = useApiSystem({ NORN_API_TOKEN: TOKEN });

const call = async (method: string, path: string, body?: string | object) => {
  const res = await ctx.app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(typeof body === 'object' ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const type = res.headers.get('content-type') ?? '';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read what they expect
  const parsed: any = type.includes('json')
    ? await res.json()
    : Buffer.from(await res.arrayBuffer());
  return { status: res.status, body: parsed, headers: res.headers };
};

describe('registering stacks', () => {
  it('needs the bearer token', async () => {
    expect((await ctx.app.request('/api/stacks')).status).toBe(401);
  });

  it('takes YAML (201), answers the spec without the secret, and an update is a 200', async () => {
    const created = await call('POST', '/api/stacks', STACK_YAML);
    expect(created.status).toBe(201);
    expect(created.body.stack).toMatchObject({ id: 'platform', hasWebhookSecret: true });
    expect(created.body.stack.spec.drift).toEqual({
      schedule: '0 6 * * *',
      timezone: 'Europe/Berlin',
    });
    expect(JSON.stringify(created.body)).not.toContain('s3cret');

    const got = await call('GET', '/api/stacks/platform');
    expect(got.status).toBe(200);
    expect(got.body.stack.spec).not.toHaveProperty('webhookSecret');
    expect(got.body.stack.hasWebhookSecret).toBe(true);
    expect(JSON.stringify(got.body)).not.toContain('s3cret');

    // Sending back what GET answered (no secret) keeps the secret.
    const again = await call('POST', '/api/stacks', { ...got.body.stack.spec, path: 'stacks/p2' });
    expect(again.status).toBe(200);
    expect(again.body.stack).toMatchObject({ hasWebhookSecret: true, spec: { path: 'stacks/p2' } });
    expect(await ctx.system.stacks.webhookSecret('platform')).toBe('s3cret-s3cret-s3cret');

    const removed = await call('POST', '/api/stacks', {
      ...got.body.stack.spec,
      webhookSecret: null,
    });
    expect(removed.body.stack.hasWebhookSecret).toBe(false);
  });

  it('takes JSON, lists every stack, and finds stacks by their normalized repository', async () => {
    const res = await call('POST', '/api/stacks', aStack({ name: 'net' }));
    expect(res.status).toBe(201);
    expect(res.body.stack.spec.repo.branch).toBeUndefined();
    const list = await call('GET', '/api/stacks');
    expect(list.body.stacks.map((s: { id: string }) => s.id)).toEqual(
      expect.arrayContaining(['net', 'platform']),
    );
    const found = await ctx.system.stacks.byRepo(['git.example.com/acme/infra']);
    expect(found.map((s) => s.id)).toEqual(expect.arrayContaining(['net', 'platform']));
    expect(await ctx.system.stacks.byRepo(['git.example.com/acme/other'])).toEqual([]);
  });

  it('refuses a bad stack with 400 and every problem with its path', async () => {
    const res = await call(
      'POST',
      '/api/stacks',
      'name: Bad\nrepo: {url: https://x.example/a.git}\npath: ../up\nengin: x\n',
    );
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('SPEC_INVALID');
    expect(res.body.error.problems.map((p: { path: string }) => p.path).sort()).toEqual([
      'engin',
      'name',
      'path',
    ]);
    expect((await call('POST', '/api/stacks', '')).status).toBe(400);
  });
});

/**
 * A run row in the stack's scope, written directly: no stack pipeline exists yet, and runs.app_id
 * must still name an app (001_baseline.sql), so `host` is registered as one.
 */
async function stackRun(stack: string, host: string, status: 'succeeded' | 'running') {
  await registerApp(ctx.system, host);
  const id = randomUUID();
  await ctx.tdb.db.query(
    `INSERT INTO runs (id, app_id, pipeline, pipeline_version, event_prefix, queue_name, steps, scope, policy, status)
     VALUES ($1, $2, 'stack-plan', '1', 'stack', 'stack', '{plan}', $3, 'queue', $4)`,
    [id, host, `stack:${stack}`, status],
  );
  return id;
}

describe("a stack's runs, drift and plans", () => {
  it('lists the runs of scope stack:<id>, newest first', async () => {
    await call('POST', '/api/stacks', aStack({ name: 'runs-stack' }));
    const ids = [
      await stackRun('runs-stack', 'runs-host', 'succeeded'),
      await stackRun('runs-stack', 'runs-host', 'succeeded'),
    ];
    const res = await call('GET', '/api/stacks/runs-stack/runs');
    expect(res.status).toBe(200);
    expect(res.body.runs.map((r: { id: string }) => r.id)).toEqual([...ids].reverse());
    expect((await call('GET', '/api/stacks/nope/runs')).status).toBe(404);
  });

  it('answers drift unknown until a check recorded one', async () => {
    await call('POST', '/api/stacks', aStack({ name: 'drifty' }));
    expect((await call('GET', '/api/stacks/drifty/drift')).body.drift).toEqual({
      subject: 'stack:drifty',
      status: 'unknown',
    });
    const first = await ctx.system.drift.record('stack:drifty', {
      status: 'drifted',
      fingerprint: 'abc',
      summary: { change: 1 },
    });
    expect(first.changed).toBe(true);
    const same = await ctx.system.drift.record('stack:drifty', {
      status: 'drifted',
      fingerprint: 'abc',
    });
    expect(same.changed).toBe(false);
    const res = await call('GET', '/api/stacks/drifty/drift');
    expect(res.body.drift).toMatchObject({
      subject: 'stack:drifty',
      status: 'drifted',
      fingerprint: 'abc',
    });
  });

  it('lists plans, answers one with its commits and show json, and its file only when asked', async () => {
    await call('POST', '/api/stacks', aStack({ name: 'planned' }));
    const planFile = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0xff, 0x00, 0x01]);
    const plan = await ctx.system.plans.insert({
      stackId: 'planned',
      runId: 'run-1',
      kind: 'review',
      baseSha: 'a'.repeat(40),
      headSha: 'b'.repeat(40),
      planFile,
      summary: { add: 1, change: 0, destroy: 0 },
      showJson: { format_version: '1.2', resource_changes: [] },
      pullRequest: 7,
    });
    await ctx.system.plans.insert({ stackId: 'planned', kind: 'drift', summary: {} });

    const list = await call('GET', '/api/stacks/planned/plans');
    expect(list.body.plans.map((p: { kind: string }) => p.kind)).toEqual(['drift', 'review']);
    expect(JSON.stringify(list.body)).not.toContain('showJson');
    const pr = await call('GET', '/api/stacks/planned/plans?pullRequest=7');
    expect(pr.body.plans).toHaveLength(1);
    expect((await call('GET', '/api/stacks/planned/plans?kind=bogus')).status).toBe(400);

    const one = await call('GET', `/api/plans/${plan.id}`);
    expect(one.status).toBe(200);
    expect(one.body.plan).toMatchObject({
      id: plan.id,
      stackId: 'planned',
      kind: 'review',
      pullRequest: 7,
      commits: { base: 'a'.repeat(40), head: 'b'.repeat(40) },
      summary: { add: 1, change: 0, destroy: 0 },
      showJson: { format_version: '1.2' },
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(one.body.plan).not.toHaveProperty('planFile');

    const file = await call('GET', `/api/plans/${plan.id}?format=file`);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('application/octet-stream');
    expect(file.headers.get('x-norn-sha256')).toBe(one.body.plan.sha256);
    expect(Buffer.compare(file.body as Buffer, planFile)).toBe(0);

    expect((await call('GET', '/api/plans/999999')).status).toBe(404);
    expect((await call('GET', '/api/plans/abc')).status).toBe(404);
    expect((await call('GET', `/api/plans/${plan.id}?format=zip`)).status).toBe(400);
  });

  it('deletes a stack with its plans and drift state; a stack with a running run is kept', async () => {
    await call('POST', '/api/stacks', aStack({ name: 'busy' }));
    const run = await stackRun('busy', 'busy-host', 'running');
    const blocked = await call('DELETE', '/api/stacks/busy');
    expect(blocked.status).toBe(409);
    await ctx.tdb.db.query(`UPDATE runs SET status = 'succeeded' WHERE id = $1`, [run]);

    const plan = await ctx.system.plans.insert({ stackId: 'busy', kind: 'release' });
    await ctx.system.drift.record('stack:busy', { status: 'clean' });
    const deleted = await call('DELETE', '/api/stacks/busy');
    expect(deleted).toMatchObject({ status: 200, body: { deleted: 'busy' } });
    expect((await call('GET', '/api/stacks/busy')).status).toBe(404);
    expect(await ctx.system.plans.get(plan.id)).toBeNull();
    expect(await ctx.system.drift.get('stack:busy')).toBeNull();
    expect((await call('DELETE', '/api/stacks/busy')).status).toBe(404);
  });
});
