/**
 * DELETE /api/apps/:id: refused with a 409 naming what is in the way (runs, releases, containers on
 * the Docker engine), otherwise a soft delete that hides the app, refuses its runs, keeps its
 * history readable and lets the name be registered again.
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerDriver } from '../../src/shared/drivers/docker.js';
import { busyboxContext, dockerUp, fakeSha, TEST_LABELS } from '../support/docker/engine.js';
import { testEnv, useApiSystem, waitForRun } from '../support/norn.js';
import { spawnNorn, TEST_PIPELINES } from '../support/processes.js';

const TOKEN = 'delete-token-0123456789abcdef';
const CONTAINER = 'h7a-del-ct-web-0';
const ctx = useApiSystem({ NORN_API_TOKEN: TOKEN });

const call = (method: string, path: string, body?: object) =>
  ctx.app.request(path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
// Each app its own port: ports are owned, so two registered apps on one port are refused.
const PORTS: Record<string, number> = {
  'h7a-del-run': 19140,
  'h7a-del-rel': 19141,
  'h7a-del-ok': 19142,
  'h7a-del-ct': 19143,
};
const register = (name: string) =>
  call('POST', '/api/apps', { name, processes: { web: { port: PORTS[name]! } } });
const deploy = async (name: string, ref = 'main') =>
  (await (await call('POST', `/api/apps/${name}/deploy`, { ref })).json()) as {
    deploymentId: string;
    sagaId: string;
  };

describe('DELETE /api/apps/:id', () => {
  it('404s for an app that does not exist', async () => {
    const res = await call('DELETE', '/api/apps/h7a-nope');
    expect(res.status).toBe(404);
    expect((await res.json()).error.message).toBe('app h7a-nope not found');
  });

  it('is refused with 409 naming the run while one is queued or running', async () => {
    expect((await register('h7a-del-run')).status).toBe(201);
    const running = await deploy('h7a-del-run', 'sleep-10000');
    const queued = await deploy('h7a-del-run');
    const res = await call('DELETE', '/api/apps/h7a-del-run');
    expect(res.status).toBe(409);
    const { error } = await res.json();
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toContain(`run ${running.deploymentId} (chain, running)`);
    expect(error.message).toContain(`run ${queued.deploymentId} (chain, queued)`);
    expect(error.message).toMatch(/cancel its runs or let them end/);
    expect(error.blockers.runs.map((r: { id: string }) => r.id)).toEqual([
      running.deploymentId,
      queued.deploymentId,
    ]);
    expect((await call('GET', '/api/apps/h7a-del-run')).status).toBe(200); // still there
    for (const r of [queued, running]) {
      await call('POST', `/api/deployments/${r.deploymentId}/cancel`);
      await waitForRun(ctx.system, r.deploymentId);
    }
    expect((await call('DELETE', '/api/apps/h7a-del-run')).status).toBe(200);
  });

  it('is refused with 409 while a release is active, saying that teardown does not exist yet', async () => {
    expect((await register('h7a-del-rel')).status).toBe(201);
    const run = await deploy('h7a-del-rel');
    await waitForRun(ctx.system, run.deploymentId);
    // What the deploy pipeline's submit step records on the docker target (chain has no release).
    const { rows } = await ctx.system.db.query<{ id: number }>(
      `INSERT INTO releases (app_id, run_id, image_ref, commit_sha, spec, status)
       VALUES ('h7a-del-rel', $1, 'img', 'sha', '{}', 'active') RETURNING id`,
      [run.deploymentId],
    );
    const res = await call('DELETE', '/api/apps/h7a-del-rel');
    expect(res.status).toBe(409);
    const { error } = await res.json();
    expect(error.message).toContain(`release ${rows[0]!.id} (active)`);
    expect(error.message).toMatch(/no teardown yet/);
  });

  it('hides the app, refuses its runs, keeps its history and lets the name be registered again', async () => {
    expect((await register('h7a-del-ok')).status).toBe(201);
    const first = await deploy('h7a-del-ok');
    await waitForRun(ctx.system, first.deploymentId);
    const res = await call('DELETE', '/api/apps/h7a-del-ok');
    expect(res.status).toBe(200);
    expect((await res.json()).app).toMatchObject({
      id: 'h7a-del-ok',
      deletedAt: expect.any(String),
    });

    expect((await call('GET', '/api/apps/h7a-del-ok')).status).toBe(404);
    const listed = (await (await call('GET', '/api/apps')).json()).apps.map(
      (a: { id: string }) => a.id,
    );
    expect(listed).not.toContain('h7a-del-ok');
    expect((await call('POST', '/api/apps/h7a-del-ok/deploy', {})).status).toBe(404);
    expect((await call('DELETE', '/api/apps/h7a-del-ok')).status).toBe(404);
    // The database refuses a run too, whoever asks (a request that raced the delete).
    await expect(
      ctx.system.runs.request({ appId: 'h7a-del-ok', pipeline: 'chain' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // History stays readable by id.
    expect((await call('GET', `/api/deployments/${first.deploymentId}`)).status).toBe(200);
    const saga = await (await call('GET', `/api/sagas/${first.sagaId}/events`)).json();
    expect(saga.events.at(-1).type).toBe('deploy.completed');
    const lastSeq = saga.events.at(-1).seq;

    // The name can be registered again: a new app (201), whose events continue the sequence.
    expect((await register('h7a-del-ok')).status).toBe(201);
    const again = await deploy('h7a-del-ok');
    expect((await waitForRun(ctx.system, again.deploymentId)).status).toBe('succeeded');
    const next = await (await call('GET', `/api/sagas/${again.sagaId}/events`)).json();
    expect(next.events[0].seq).toBe(lastSeq + 1);
  });
});

describe('DELETE /api/apps/:id on the docker target', () => {
  const engine = new Docker();
  let image: string;
  beforeAll(async () => {
    await dockerUp();
    const ctx = await busyboxContext([]);
    image = createDockerDriver({ registryUrl: '127.0.0.1:5000' }).imageRef('h7a-del', fakeSha());
    await createDockerDriver({ registryUrl: '127.0.0.1:5000' }).build({
      contextDir: ctx.dir,
      dockerfile: 'Dockerfile',
      tag: image,
      labels: { ...TEST_LABELS },
    });
    await ctx.remove();
  }, 300_000);
  // Only what this file made: other test files on this engine may be using theirs.
  afterAll(async () => {
    await engine
      .getContainer(CONTAINER)
      .remove({ force: true })
      .catch(() => {});
    await engine
      .getImage(image)
      .remove({ force: true })
      .catch(() => {});
  });

  it("is refused with 409 naming the app's containers found by its norn.app label", async () => {
    const api = spawnNorn('api', {
      ...testEnv(ctx.tdb.url, { NORN_API_TOKEN: TOKEN, NORN_PIPELINES_MODULE: TEST_PIPELINES }),
      LOG_LEVEL: 'info',
    });
    await api.waitForLog('api listening', 60_000);
    const base = /"url":"(http:\/\/[^"]+)"/.exec(api.output())![1]!;
    const del = () =>
      fetch(`${base}/api/apps/h7a-del-ct`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
    expect((await register('h7a-del-ct')).status).toBe(201);
    const container = await engine.createContainer({
      Image: image,
      name: CONTAINER,
      Cmd: ['/bin/busybox', 'sleep', '3600'],
      Labels: { ...TEST_LABELS, 'norn.app': 'h7a-del-ct' },
    });
    await container.start();
    const res = await del();
    expect(res.status).toBe(409);
    const { error } = await res.json();
    expect(error.message).toContain(`containers ${CONTAINER}`);
    expect(error.message).toMatch(/no teardown yet/);
    expect(error.blockers.containers).toEqual([CONTAINER]);
    await container.remove({ force: true });
    expect((await del()).status).toBe(200);
  }, 120_000);
});
