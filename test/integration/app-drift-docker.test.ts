/**
 * App drift on the docker target, for real: the example app (two web replicas, a scheduled
 * process, an endpoint routed through the cloudflared config file) is deployed through the api
 * and a worker with the real git, Docker engine, registry and BullMQ; then its containers,
 * schedule and route are changed behind norn's back with the docker CLI, BullMQ and the config
 * file, and checkAppDrift must say each change as the address and action a deploy would take.
 * The app is deployed by a signed push webhook (repo.autoDeploy), and the drift-check pipeline
 * (POST /api/apps/:id/drift-check) reports the drift once, as drift.detected, then its clearing.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  checkAppDrift,
  ingressRoutes,
  type AppDriftDeps,
  type AppDriftFinding,
} from '../../src/gitops/app-drift.js';
import { driftFingerprint } from '../../src/gitops/tofu-plan.js';
import { CRON_QUEUE } from '../../src/pipelines/deploy/cron.js';
import { createCaddyDriver } from '../../src/shared/drivers/caddy.js';
import { removeAppIngress } from '../../src/shared/drivers/cloudflared.js';
import { parseInfraspec, type Infraspec } from '../../src/shared/spec/infraspec.js';
import type { NornSystem } from '../../src/system.js';
import { routeId } from '../../src/targets/docker/names.js';
import { startFleet, type Fleet } from '../support/deploy/fleet.js';
import { freePorts, removeAppContainers } from '../support/deploy-runtime/fixtures.js';
import { exampleSpecWithoutDatabase } from '../support/example.js';
import { apiCaller, waitFor, waitForRun } from '../support/norn.js';
import { delivery, fixture } from '../support/webhooks.js';

const TOKEN = 'app-drift-token-0123456789abcdef';
const SECRET = 'app-drift-webhook-secret-0123456789';
const APP = `drift-${randomBytes(3).toString('hex')}`;
const HOST = `${APP}.example.test`;
/** The release's image under another tag: the same content, another image as docker lists it. */
const OTHER_IMAGE = `norn-drift-other-${APP}:1`;
const CLOUDFLARED = 'tunnel: test\ningress:\n  - service: http_status:404\n';

let fleet: Fleet;
let configPath: string;
let deps: AppDriftDeps;
let app: { id: string; spec: Infraspec };

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();

beforeAll(async () => {
  fleet = await startFleet({
    token: TOKEN,
    name: 'app-drift',
    env: (work) => {
      configPath = join(work, 'cloudflared.yml');
      writeFileSync(configPath, CLOUDFLARED);
      return {
        NORN_CLOUDFLARED_CONFIG: configPath,
        NORN_CLOUDFLARED_RESTART: JSON.stringify(['touch', join(work, 'tunnel-restarted')]),
        NORN_HEALTH_POLL_MS: '200',
      };
    },
  });
  deps = {
    releases: fleet.services.releases,
    target: fleet.services.targets.docker!,
    readRoutes: ingressRoutes(fleet.services),
  };
}, 120_000);

afterAll(async () => {
  await removeAppContainers([APP]);
  try {
    docker('rmi', OTHER_IMAGE);
  } catch {
    // never tagged: the test failed before
  }
  await fleet?.close();
});

const call = apiCaller(() => fleet.api, TOKEN);

/** The example app: two web replicas on free ports, a yearly scheduled process, one endpoint. */
async function driftSpec() {
  const spec = exampleSpecWithoutDatabase();
  return {
    ...spec,
    name: APP,
    repo: { ...spec.repo, url: fleet.repoUrl, autoDeploy: true, webhookSecret: SECRET },
    processes: {
      web: { ...spec.processes.web, port: await freePorts(2) },
      tick: { schedule: '0 0 1 1 *', command: 'true' },
    },
    endpoints: [{ url: HOST }],
    deployPolicy: { ...spec.deployPolicy, minHealthyTime: '1s' },
  };
}

/** Checks twice: the same drift found twice has the same fingerprint. */
async function check(): Promise<AppDriftFinding & { fingerprint: string }> {
  const first = await checkAppDrift(deps, app);
  const again = await checkAppDrift(deps, app);
  expect(again).toEqual(first);
  const fingerprint = driftFingerprint(first.summary);
  expect(driftFingerprint(again.summary)).toBe(fingerprint);
  return { ...first, fingerprint };
}

const none = { create: [], update: [], delete: [], replace: [] };
const replica = (i: number) => `norn.${APP}.web.${i}`;

describe('app drift on the docker target', () => {
  const seen: string[] = [];

  it('nothing deployed yet is not drift', async () => {
    const spec = await driftSpec();
    expect((await call('POST', '/api/apps', spec)).status).toBe(201);
    const parsed = parseInfraspec(spec);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    app = { id: APP, spec: parsed.spec };
    const found = await check();
    expect(found.drifted).toBe(false);
    expect(found.details).toEqual([
      `${APP}: no active release (nothing deployed yet), nothing to compare`,
    ]);
  });

  it('a push to its branch deploys it (repo.autoDeploy); right after, nothing has drifted', async () => {
    const repoDir = fileURLToPath(fleet.repoUrl);
    const sha = execFileSync('git', ['-C', repoDir, 'rev-parse', 'main'], {
      encoding: 'utf8',
    }).trim();
    const payload = fixture('github', 'push.default-branch');
    Object.assign(payload, { ref: 'refs/heads/main', after: sha, deleted: false });
    payload.repository.clone_url = fleet.repoUrl;
    payload.repository.default_branch = 'main';
    const d = delivery('github', 'push', JSON.stringify(payload), SECRET);
    const res = await fetch(`${fleet.api.url}/webhooks/github`, {
      method: 'POST',
      headers: d.headers,
      body: d.body,
    });
    const answer = (await res.json()) as { routed: Array<{ id: string; started?: string }> };
    expect(res.status, JSON.stringify(answer)).toBe(202);
    const runId = answer.routed.find((r) => r.id === APP)?.started;
    expect(runId, JSON.stringify(answer)).toEqual(expect.any(String));
    const done = await waitForRun(fleet.system as NornSystem, runId!, undefined, 180_000);
    expect([done.status, done.error]).toEqual(['succeeded', null]);
    expect(done.requestedBy).toBe(`webhook:github:${d.deliveryId}`);
    expect((await fleet.services.releases.active(APP))?.commitSha).toBe(sha);
    const found = await check();
    expect(found).toMatchObject({ drifted: false, details: [], summary: { byAction: none } });
    seen.push(found.fingerprint);
  }, 240_000);

  it("its Caddy route changed through Caddy's admin API: a replica left out is its update, the route gone its create; put back, clean", async () => {
    const proxy = createCaddyDriver({ adminUrl: fleet.system.config.deploy.ingress.caddyAdminUrl });
    const id = routeId(APP, 'web');
    const route = (await proxy.route(id))!;
    expect(route.upstreams).toHaveLength(2);
    const [kept, left] = route.upstreams as [number, number];
    try {
      await proxy.setRoute(id, { ...route, upstreams: [kept] });
      const partial = await check();
      expect(partial.summary.byAction).toEqual({ ...none, update: ['proxy.web'] });
      expect(partial.details).toEqual([
        expect.stringMatching(
          new RegExp(
            `^proxy route of web: leaves out web\\[[01]\\] \\(port ${left}\\), which gets no traffic$`,
          ),
        ),
      ]);
      expect(seen).not.toContain(partial.fingerprint);

      await proxy.removeRoute(id);
      const gone = await check();
      expect(gone.summary.byAction).toEqual({ ...none, create: ['proxy.web'] });
      expect(gone.details).toEqual([
        `proxy route of web: missing, so nothing answers on port ${route.listenPort}`,
      ]);
      expect(gone.fingerprint).not.toBe(partial.fingerprint);
    } finally {
      await proxy.setRoute(id, route);
    }
    expect(await check()).toMatchObject({ drifted: false, details: [] });
  });

  it('a replica removed (docker rm -f) is drift: its create', async () => {
    docker('rm', '-f', replica(1));
    const found = await check();
    expect(found.drifted).toBe(true);
    expect(found.summary.byAction).toEqual({ ...none, create: ['process.web[1]'] });
    expect(found.details).toEqual(['web[1]: missing']);
    expect(seen).not.toContain(found.fingerprint);
    seen.push(found.fingerprint);
  });

  it('a container of another image and release in its place: its update', async () => {
    const release = await fleet.services.releases.active(APP);
    docker('tag', release!.imageRef, OTHER_IMAGE);
    docker(
      'run',
      '-d',
      '--name',
      replica(1),
      ...['--label', `norn.app=${APP}`, '--label', 'norn.process=web'],
      ...['--label', 'norn.replica=1', '--label', 'norn.release=999'],
      OTHER_IMAGE,
      ...['/bin/busybox', 'sleep', '600'],
    );
    const found = await check();
    expect(found.summary.byAction).toEqual({ ...none, update: ['process.web[1]'] });
    expect(found.details).toEqual([
      `web[1]: image ${OTHER_IMAGE}, release has ${release!.imageRef}`,
      `web[1]: release 999, active release is ${release!.id}`,
    ]);
    expect(seen).not.toContain(found.fingerprint);
    seen.push(found.fingerprint);
  });

  it('a replica stopped (docker stop): its replace', async () => {
    docker('stop', replica(0));
    const found = await check();
    expect(found.summary.byAction).toEqual({
      ...none,
      update: ['process.web[1]'],
      replace: ['process.web[0]'],
    });
    expect(found.details[0]).toBe('web[0]: not running');
    expect(seen).not.toContain(found.fingerprint);
    seen.push(found.fingerprint);
  });

  it("the endpoint's route gone from the cloudflared config: its create", async () => {
    writeFileSync(configPath, removeAppIngress(readFileSync(configPath, 'utf8'), APP).text);
    const found = await check();
    expect(found.summary.byAction.create).toEqual([`route.${HOST}`]);
    expect(found.details).toContain(`route ${HOST}: not in the ingress config`);
    seen.push(found.fingerprint);
  });

  it("the scheduled process's job scheduler removed: its create", async () => {
    const queue = new Queue(CRON_QUEUE, {
      connection: { url: inject('redisUrl') },
      prefix: fleet.system.config.queuePrefix,
    });
    try {
      expect(await queue.removeJobScheduler(`${APP}.tick`)).toBe(true);
    } finally {
      await queue.close();
    }
    const found = await check();
    expect(found.summary).toEqual({
      add: 3, // two creates and the replace
      change: 1,
      destroy: 1,
      byAction: {
        create: [`route.${HOST}`, 'schedule.tick'],
        update: ['process.web[1]'],
        delete: [],
        replace: ['process.web[0]'],
      },
    });
    expect(new Set([...seen, found.fingerprint]).size).toBe(seen.length + 1);
  });

  it('the drift-check pipeline reports it once as drift.detected, then drift.cleared after a redeploy', async () => {
    const pipelineCheck = async () => {
      const started = await call('POST', `/api/apps/${APP}/drift-check`);
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      const done = await waitForRun(
        fleet.system as NornSystem,
        started.body.runId,
        undefined,
        60_000,
      );
      expect([done.status, done.error]).toEqual(['succeeded', null]);
      expect(done.scope).toBe(`drift:${APP}`);
      await waitFor(
        async () => (await hooksPending(started.body.runId)) === 0,
        'the drift-check hooks',
      );
    };
    const detected = async () =>
      (await fleet.system.events.byAppNewestFirst(APP, undefined, 500)).filter(
        (e) => e.type === 'drift.detected' || e.type === 'drift.cleared',
      );
    const expected = await check();
    await pipelineCheck();
    const [event] = await detected();
    expect(event).toMatchObject({
      type: 'drift.detected',
      payload: { app: APP, fingerprint: expected.fingerprint },
    });
    const state = (await call('GET', `/api/apps/${APP}/drift`)).body.drift;
    expect(state).toMatchObject({ status: 'drifted', fingerprint: expected.fingerprint });
    await pipelineCheck(); // the same drift: not reported again
    expect(await detected()).toHaveLength(1);

    const redeploy = await call('POST', `/api/apps/${APP}/deploy`, { ref: 'main' });
    const done = await waitForRun(
      fleet.system as NornSystem,
      redeploy.body.runId,
      undefined,
      180_000,
    );
    expect([done.status, done.error]).toEqual(['succeeded', null]);
    await pipelineCheck();
    const events = await detected();
    expect(events.map((e) => e.type)).toEqual(['drift.cleared', 'drift.detected']);
    expect((await call('GET', `/api/apps/${APP}/drift`)).body.drift.status).toBe('clean');
  }, 300_000);
});

async function hooksPending(runId: string): Promise<number> {
  const { rows } = await fleet.system.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM run_hooks WHERE run_id = $1 AND status = 'pending'`,
    [runId],
  );
  return rows[0]!.n;
}
