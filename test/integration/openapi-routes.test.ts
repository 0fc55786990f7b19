/**
 * Every operation of the served OpenAPI document, called on the real api (PostgreSQL, Redis, a
 * worker): each answer's status must be one the document lists for it, and its body must match
 * the schema given there. The last test fails if an operation went uncalled, so a route added to
 * the document needs a call here too.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../src/pipelines/deploy/snapshot-store.js';
import { WebhookStore } from '../../src/shared/store/webhooks.js';
import { useApiSystem, waitFor, waitForRun } from '../support/norn.js';
import { operations, responseChecker } from '../support/openapi.js';
import { aStack } from '../support/stacks.js';

const TOKEN = 'test-token-openapi-0123456789';
const ctx = useApiSystem({ NORN_API_TOKEN: TOKEN });

type Doc = Parameters<typeof responseChecker>[0];
let doc: Doc;
let check: ReturnType<typeof responseChecker>;
const called = new Map<string, number[]>();

/**
 * Calls operation `method template` with `params` filled in; checks the answer against the
 * document and returns its status and body.
 */
async function call(
  method: string,
  template: string,
  o: {
    params?: Record<string, string | number>;
    query?: string;
    body?: string | object;
    type?: string;
  } = {},
) {
  const path = template.replace(/\{(\w+)\}/g, (_, k: string) =>
    encodeURIComponent(String(o.params?.[k] ?? `missing-${k}`)),
  );
  const res = await ctx.app.request(path + (o.query ? `?${o.query}` : ''), {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(o.body === undefined
        ? {}
        : {
            'content-type':
              o.type ?? (typeof o.body === 'string' ? 'application/yaml' : 'application/json'),
          }),
    },
    body:
      o.body === undefined
        ? undefined
        : typeof o.body === 'string'
          ? o.body
          : JSON.stringify(o.body),
  });
  const type = res.headers.get('content-type') ?? '';
  const key = `${method.toLowerCase()} ${template}`;
  called.set(key, [...(called.get(key) ?? []), res.status]);
  if (!type.includes('application/json')) {
    // Only the plan file answers something else; its status is still checked against the document.
    const op = doc.paths[template]?.[method.toLowerCase()];
    expect(Object.keys(op?.responses ?? {}), key).toContain(String(res.status));
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- read as the schema just checked
  const body: any = await res.json();
  check(method, template, res.status, body);
  return { status: res.status, body, headers: res.headers };
}

const APP_YAML = `
name: oa-web
repo:
  url: https://example.invalid/acme/oa-web.git
processes:
  web:
    port: 3100
env:
  SECRET: do-not-answer
`;

afterAll(() => {
  // What was called, for whoever reads a failure.
  if (process.env.DEBUG_OPENAPI) console.log(Object.fromEntries(called));
});

describe('every documented operation answers as documented', () => {
  it('serves the document without the token', async () => {
    const res = await ctx.app.request('/api/openapi.json');
    expect(res.status).toBe(200);
    doc = (await res.json()) as Doc;
    expect(doc.openapi).toMatch(/^3\.1\./);
    check = responseChecker(doc);
    check('GET', '/api/openapi.json', 200, doc);
    called.set('get /api/openapi.json', [200]);
    // Everything else under /api still needs it.
    expect((await ctx.app.request('/api/apps')).status).toBe(401);
    expect((await ctx.app.request('/api/openapi.json', { method: 'POST' })).status).toBe(401);
  });

  it('apps: register, read, list, runs, events, drift, forge refusals', async () => {
    expect((await call('POST', '/api/apps', { body: APP_YAML })).status).toBe(201);
    const again = await call('POST', '/api/apps', {
      body: {
        name: 'oa-web',
        processes: { web: { port: 3100 } },
        repo: { url: 'https://example.invalid/acme/oa-web.git' },
      },
    });
    expect(again.status).toBe(200);
    const invalid = await call('POST', '/api/apps', { body: 'name: oa-bad\nprocesess: {}\n' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('SPEC_INVALID');
    const params = { id: 'oa-web' };
    expect((await call('GET', '/api/apps')).body.apps.map((a: { id: string }) => a.id)).toContain(
      'oa-web',
    );
    expect((await call('GET', '/api/apps/{id}', { params })).status).toBe(200);
    expect((await call('GET', '/api/apps/{id}', { params: { id: 'oa-none' } })).status).toBe(404);
    expect((await call('GET', '/api/apps/{id}/lease', { params })).status).toBe(200);

    const deploy = await call('POST', '/api/apps/{id}/deploy', { params, body: { ref: 'main' } });
    expect(deploy.status).toBe(202);
    await waitForRun(ctx.system, deploy.body.runId);
    const bad = await call('GET', '/api/apps/{id}/runs', { params, query: 'limit=0' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: 'BAD_REQUEST',
      problems: [{ path: 'query.limit' }],
    });
    expect(
      (await call('GET', '/api/apps/{id}/runs', { params, query: 'limit=5' })).body.runs,
    ).toHaveLength(1);
    expect(
      (await call('GET', '/api/apps/{id}/deployments', { params })).body.deployments,
    ).toHaveLength(1);
    const page = await call('GET', '/api/apps/{id}/events', { params, query: 'limit=2' });
    expect(page.body.next).not.toBeNull();
    await call('GET', '/api/apps/{id}/events', {
      params,
      query: `before=${page.body.next.before}`,
    });

    const check = await call('POST', '/api/apps/{id}/drift-check', { params });
    expect(check.status).toBe(202);
    await waitForRun(ctx.system, check.body.runId);
    expect((await call('GET', '/api/apps/{id}/drift', { params })).body.drift.status).toBe(
      'unknown',
    );
    await ctx.system.drift.record('app:oa-web', {
      status: 'clean',
      fingerprint: 'f1',
      summary: { n: 0 },
    });
    expect((await call('GET', '/api/apps/{id}/drift', { params })).body.drift.fingerprint).toBe(
      'f1',
    );

    // A docker app has no forge: both are refused, as documented.
    expect((await call('POST', '/api/apps/{id}/forge', { params, body: {} })).status).toBe(409);
    expect(
      (await call('POST', '/api/apps/{id}/forge', { params, body: { force: 'yes' } })).status,
    ).toBe(400);
    expect((await call('DELETE', '/api/apps/{id}/forge', { params })).status).toBe(409);
  });

  it('snapshots: a listing, and a restore refused for an app without a database', async () => {
    await new SnapshotStore(ctx.system.db).record({
      appId: 'oa-web',
      database: 'oa',
      ts: '20260102T030405678Z',
      takenAt: new Date(),
      sizeBytes: 1234,
      location: '/var/lib/norn/snapshots/oa-web/20260102T030405678Z.dump',
      sha256: 'a'.repeat(64),
      deploymentId: null,
    });
    const params = { id: 'oa-web', ts: '20260102T030405678Z' };
    expect((await call('GET', '/api/apps/{id}/snapshots', { params })).body.snapshots).toHaveLength(
      1,
    );
    expect((await call('POST', '/api/apps/{id}/snapshots/{ts}/restore', { params })).status).toBe(
      409,
    );
    const unknown = { ...params, ts: '20990102T030405678Z' };
    expect(
      (await call('POST', '/api/apps/{id}/snapshots/{ts}/restore', { params: unknown })).status,
    ).toBe(404);
  });

  it('releases: what each deploy put on the target, without its spec or secrets', async () => {
    const { rows } = await ctx.system.db.query<{ id: string }>(
      "SELECT id FROM runs WHERE app_id = 'oa-web' ORDER BY created_at LIMIT 1",
    );
    await ctx.system.db.query(
      `INSERT INTO releases (app_id, run_id, image_ref, commit_sha, spec, secrets_enc,
                             migrations_applied, snapshot_ts, status, activated_at)
       VALUES ('oa-web', $1, '127.0.0.1:5000/oa-web:abc', 'abc123', '{}', 'ENC[secret]',
               '{001_init.sql}', '20260102T030405678Z', 'superseded', now())`,
      [rows[0]!.id],
    );
    const listed = await call('GET', '/api/apps/{id}/releases', { params: { id: 'oa-web' } });
    expect(listed.body.releases).toHaveLength(1);
    expect(listed.body.releases[0]).toMatchObject({
      imageRef: '127.0.0.1:5000/oa-web:abc',
      migrationsApplied: ['001_init.sql'],
      snapshotTs: '20260102T030405678Z',
      status: 'superseded',
    });
    expect(JSON.stringify(listed.body)).not.toContain('ENC[secret]');
    expect(
      (await call('GET', '/api/apps/{id}/releases', { params: { id: 'oa-none' } })).status,
    ).toBe(404);
  });

  it('runs and their earlier names: detail, events, step log, cancel, resume; scopes', async () => {
    const accepted = await call('POST', '/api/apps/{id}/deploy', { params: { id: 'oa-web' } });
    const id = accepted.body.runId as string;
    const cancelled = await call('POST', '/api/runs/{id}/cancel', { params: { id } });
    expect(cancelled.status).toBe(202);
    const run = await waitForRun(ctx.system, id);
    expect(['cancelled', 'failed', 'succeeded']).toContain(run.status);
    const step = run.steps[0]!;
    for (const base of ['/api/runs', '/api/deployments']) {
      expect((await call('GET', `${base}/{id}`, { params: { id } })).status).toBe(200);
      expect((await call('GET', `${base}/{id}`, { params: { id: randomUUID() } })).status).toBe(
        404,
      );
      expect(
        (await call('GET', `${base}/{id}/events`, { params: { id } })).body.events.length,
      ).toBeGreaterThan(0);
      expect(
        (await call('GET', `${base}/{id}/steps/{step}/log`, { params: { id, step } })).status,
      ).toBe(200);
      expect((await call('POST', `${base}/{id}/cancel`, { params: { id } })).status).toBe(202);
    }
    // Resumed once under each name: a cancelled run resumes (202), a succeeded one is refused.
    const resumed = await call('POST', '/api/runs/{id}/resume', { params: { id } });
    expect(resumed.status).toBe(run.status === 'succeeded' ? 409 : 202);
    const done = (
      await call('GET', '/api/apps/{id}/runs', { params: { id: 'oa-web' } })
    ).body.runs.find(
      (r: { status: string; pipeline: string }) =>
        r.status === 'succeeded' && r.pipeline === 'chain',
    );
    expect(
      (await call('POST', '/api/deployments/{id}/resume', { params: { id: done.id } })).status,
    ).toBe(409);
    expect((await call('GET', '/api/sagas/{id}/events', { params: { id } })).status).toBe(200);
    expect((await call('GET', '/api/sagas/{id}/events', { params: { id: 'nope' } })).status).toBe(
      404,
    );
    expect(
      (await call('GET', '/api/scopes/{scope}', { params: { scope: 'app:oa-web' } })).status,
    ).toBe(200);
    expect(
      (await call('GET', '/api/scopes/{scope}', { params: { scope: 'nothing' } })).status,
    ).toBe(400);
    if (resumed.status === 202) await waitForRun(ctx.system, resumed.body.runId);
  });

  it('stacks and plans', async () => {
    const params = { id: 'oa-net' };
    expect((await call('POST', '/api/stacks', { body: aStack({ name: 'oa-net' }) })).status).toBe(
      201,
    );
    expect((await call('POST', '/api/stacks', { body: aStack({ name: 'oa-net' }) })).status).toBe(
      200,
    );
    expect((await call('POST', '/api/stacks', { body: { name: 'oa-x' } })).status).toBe(400);
    expect((await call('GET', '/api/stacks')).body.stacks).toHaveLength(1);
    expect((await call('GET', '/api/stacks/{id}', { params })).status).toBe(200);
    expect((await call('GET', '/api/stacks/{id}', { params: { id: 'oa-none' } })).status).toBe(404);
    const drift = await call('POST', '/api/stacks/{id}/drift-check', { params });
    expect(drift.status).toBe(202);
    await waitForRun(ctx.system, drift.body.runId);
    // The drift check runs in scope drift:<id>; the stack's own scope has had no run.
    expect((await call('GET', '/api/stacks/{id}/runs', { params })).body.runs).toEqual([]);
    expect((await call('GET', '/api/stacks/{id}/drift', { params })).status).toBe(200);
    // No release pipeline is registered in this system: refused before anything is recorded.
    expect(
      (await call('POST', '/api/stacks/{id}/release', { params, body: { commitSha: 'abc1234' } }))
        .status,
    ).toBe(422);
    expect(
      (await call('POST', '/api/stacks/{id}/release', { params, body: { commitSha: 'main' } }))
        .status,
    ).toBe(400);

    const plan = await ctx.system.plans.insert({
      stackId: 'oa-net',
      kind: 'review',
      baseSha: 'a'.repeat(40),
      headSha: 'b'.repeat(40),
      planFile: Buffer.from('plan bytes'),
      summary: { add: 1 },
      showJson: { format_version: '1.2' },
      pullRequest: 7,
    });
    const plans = await call('GET', '/api/stacks/{id}/plans', {
      params,
      query: 'kind=review&pullRequest=7',
    });
    expect(plans.body.plans.map((p: { id: number }) => p.id)).toEqual([plan.id]);
    expect(
      (await call('GET', '/api/stacks/{id}/plans', { params, query: 'kind=other' })).status,
    ).toBe(400);
    expect(
      (await call('GET', '/api/plans/{id}', { params: { id: plan.id } })).body.plan.commits,
    ).toEqual({
      base: 'a'.repeat(40),
      head: 'b'.repeat(40),
    });
    const file = await call('GET', '/api/plans/{id}', {
      params: { id: plan.id },
      query: 'format=file',
    });
    expect(file.status).toBe(200);
    expect(file.body.toString()).toBe('plan bytes');
    expect((await call('GET', '/api/plans/{id}', { params: { id: 999999 } })).status).toBe(404);
    expect((await call('DELETE', '/api/stacks/{id}', { params })).body).toEqual({
      deleted: 'oa-net',
    });
    expect((await call('DELETE', '/api/stacks/{id}', { params })).status).toBe(404);
  });

  it('alerts and webhooks', async () => {
    expect((await call('GET', '/api/alerts', { query: 'limit=10' })).status).toBe(200);
    expect((await call('GET', '/api/alerts', { query: 'limit=5000' })).status).toBe(400);
    await ctx.system.db.query(
      `INSERT INTO webhook_refusals (provider, reason, count) VALUES ('github', 'unsigned', 1)`,
    );
    expect((await call('GET', '/api/webhooks/refusals')).body.refusals).toHaveLength(1);
    const record = await new WebhookStore(ctx.system.db).insert({
      provider: 'github',
      event: 'push',
      deliveryId: randomUUID(),
      repository: 'https://example.invalid/acme/oa-web.git',
      payload: {
        ref: 'refs/heads/main',
        after: 'c'.repeat(40),
        repository: { clone_url: 'https://example.invalid/acme/oa-web.git' },
      },
    });
    expect((await call('GET', '/api/webhooks/deliveries')).body.deliveries).toHaveLength(1);
    const params = { id: record!.id };
    expect(
      (await call('GET', '/api/webhooks/deliveries/{id}', { params })).body.delivery.payload,
    ).toMatchObject({
      ref: 'refs/heads/main',
    });
    expect(
      (await call('GET', '/api/webhooks/deliveries/{id}', { params: { id: randomUUID() } })).status,
    ).toBe(404);
    expect((await call('POST', '/api/webhooks/deliveries/{id}/replay', { params })).status).toBe(
      202,
    );
  });

  it('deletes the app once nothing of it runs', async () => {
    await waitFor(
      async () =>
        (await ctx.system.store.listRuns('oa-web', 50)).every((r) =>
          ['succeeded', 'failed', 'cancelled'].includes(r.status),
        ),
      'the app to be idle',
    );
    expect((await call('DELETE', '/api/apps/{id}', { params: { id: 'oa-web' } })).status).toBe(200);
    expect((await call('DELETE', '/api/apps/{id}', { params: { id: 'oa-web' } })).status).toBe(404);
  });

  it('session: log in, read it, log out', async () => {
    const login = await call('POST', '/api/session', { body: { token: TOKEN } });
    expect(login.status).toBe(200);
    expect(login.headers.get('set-cookie')).toMatch(/^norn_session=/);
    expect((await call('POST', '/api/session', { body: { token: 'wrong' } })).status).toBe(401);
    expect((await call('GET', '/api/session')).body.session.via).toBe('token');
    expect((await call('DELETE', '/api/session')).status).toBe(204);
  });

  it('called every operation of the document', () => {
    const missing = operations(doc)
      .map((o) => `${o.method} ${o.path}`)
      .filter((k) => !called.has(k));
    expect(missing).toEqual([]);
  });
});
