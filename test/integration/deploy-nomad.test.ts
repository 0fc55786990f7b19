/**
 * The deploy, forge and teardown pipelines on the nomad target, through the api and a worker: the
 * example app is cloned, built and pushed with the real git, Docker engine and registry, then
 * planned, registered and rolled out on the strict fake Nomad (test/support/nomad), followed with
 * blocking queries (deploy.progress per task group), and routed to its Consul address in the
 * cloudflared config file. A release whose tasks crash-loop fails with the allocations' task
 * events, Nomad reverts the job itself, and the release record says so. Forge only routes;
 * teardown deregisters the jobs and removes the routes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listIngress } from '../../src/shared/drivers/cloudflared.js';
import type { NornSystem } from '../../src/system.js';
import { startAlertReceiver } from '../support/alert-receiver.js';
import { startFleet, type Fleet } from '../support/deploy/fleet.js';
import { exampleSpecWithoutDatabase } from '../support/example.js';
import { startFakeNomad, type FakeNomad } from '../support/nomad/server.js';
import { apiCaller, waitForRun } from '../support/norn.js';

const TOKEN = 'nomad-e2e-api-token-0123456789abcdef';
const NOMAD_TOKEN = 'nomad-acl-token-do-not-leak-42';
const APP = 'nomad-hello';
const CLOUDFLARED = [
  'tunnel: norn-test',
  'ingress:',
  '  - hostname: ops.example.com',
  '    service: http://127.0.0.1:9000',
  '  - service: http_status:404',
  '',
].join('\n');

let nomad: FakeNomad;
let receiver: Awaited<ReturnType<typeof startAlertReceiver>>;
let fleet: Fleet;
let configPath: string;

beforeAll(async () => {
  nomad = await startFakeNomad({ token: NOMAD_TOKEN, tickMs: 20 });
  receiver = await startAlertReceiver();
  fleet = await startFleet({
    token: TOKEN,
    name: 'nomad-e2e',
    env: (work) => {
      configPath = join(work, 'cloudflared.yml');
      writeFileSync(configPath, CLOUDFLARED);
      return {
        NORN_NOMAD_ADDR: nomad.addr,
        NORN_NOMAD_TOKEN: NOMAD_TOKEN,
        NORN_CONSUL_ADDR: nomad.consulAddr!,
        NORN_CLOUDFLARED_CONFIG: configPath,
        NORN_ALERT_WEBHOOK_URLS: receiver.url,
      };
    },
  });
}, 120_000);

afterAll(async () => {
  await fleet?.close();
  await nomad?.close();
  await receiver?.close();
});

const call = apiCaller(() => fleet.api, TOKEN);

/**
 * The example's infraspec on the nomad target, one replica (the process serving endpoints gets
 * a static port, and the fake has one node).
 */
function nomadSpec(env: Record<string, string> = {}) {
  const spec = exampleSpecWithoutDatabase();
  return {
    ...spec,
    name: APP,
    target: 'nomad',
    repo: { ...spec.repo, url: fleet.repoUrl },
    processes: { web: { ...spec.processes.web, replicas: 1 } },
    hosts: { external: 'nomad-hello.example.test' },
    endpoints: [{ url: 'api.nomad-hello.example.test' }],
    env,
    deployPolicy: { ...spec.deployPolicy, minHealthyTime: '1s', healthTimeout: '30s' },
  };
}

type Ev = { type: string; payload: Record<string, unknown> };
type Step = { name: string; status: string; error?: string };
const rules = () => listIngress(readFileSync(configPath, 'utf8'));
/** A completed step's output, as its `<prefix>.step` event carries it. */
const outputOf = (events: Ev[], step: string) =>
  events.find(
    (e) => e.type.endsWith('.step') && e.payload.step === step && e.payload.status === 'complete',
  )?.payload.output;

async function run(method: string, path: string, body: unknown = {}) {
  const started = await call(method, path, body);
  expect(started.status, JSON.stringify(started.body)).toBeLessThan(300);
  const id: string = started.body.deploymentId;
  const done = await waitForRun(fleet.system as NornSystem, id, undefined, 180_000);
  const { body: detail } = await call('GET', `/api/runs/${id}`);
  const events: Ev[] = (await call('GET', `/api/runs/${id}/events`)).body.events;
  return { id, done, steps: detail.steps as Step[], events };
}

describe('deploying to the nomad target', () => {
  it('forge only routes (nothing registered early); a deploy plans, registers, follows the rollout per group and routes to the Consul address', async () => {
    expect((await call('POST', '/api/apps', nomadSpec())).status).toBe(201);
    const forged = await run('POST', `/api/apps/${APP}/forge`);
    expect([forged.done.status, forged.done.error]).toEqual(['succeeded', null]);
    const byName = Object.fromEntries(forged.steps.map((s) => [s.name, s]));
    expect(byName['create-deployment']).toMatchObject({ status: 'skipped' });
    expect(byName['create-service']).toMatchObject({ status: 'skipped' });
    // Not running yet: no address to route to; the deploy's forge step routes it.
    expect(byName['patch-cloudflared']).toMatchObject({ status: 'skipped' });
    expect(nomad.job(APP)).toBeUndefined();

    const deployed = await run('POST', `/api/apps/${APP}/deploy`, { ref: 'main' });
    expect([deployed.done.status, deployed.done.error]).toEqual(['succeeded', null]);
    expect(deployed.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'clone:complete',
      'build:complete',
      'test:complete',
      'snapshot:skipped',
      'migrate:skipped',
      'submit:complete',
      'healthy:complete',
      'forge:complete',
      'cleanup:complete',
    ]);
    const job = nomad.job(APP)!;
    const task = (job['TaskGroups'] as { Tasks: { Config: { image: string } }[] }[])[0]!.Tasks[0]!;
    expect(task.Config.image).toMatch(new RegExp(`^127\\.0\\.0\\.1:5000/${APP}:[0-9a-f]{40}$`));
    expect(job['Meta']).toMatchObject({ 'norn.app': APP, 'norn.release': '1' });

    // submit kept Nomad's plan.
    expect(outputOf(deployed.events, 'submit')).toMatchObject({
      plan: [{ object: APP, change: 'Added' }],
    });

    // healthy reported the group's rollout inside the step.
    const progress = deployed.events.filter((e) => e.type === 'deploy.progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.payload).toMatchObject({
      step: 'healthy',
      group: 'web',
      desired: 1,
      placed: 1,
      healthy: 1,
      unhealthy: 0,
    });

    // forge routed the endpoint and hosts.external to the allocation's address in Consul.
    const service = `http://127.0.0.1:${nomadSpec().processes.web.port}`;
    expect(rules().map((r) => [r.hostname ?? '*', r.service])).toEqual([
      ['ops.example.com', 'http://127.0.0.1:9000'],
      ['api.nomad-hello.example.test', service],
      ['nomad-hello.example.test', service],
      ['*', 'http_status:404'],
    ]);
    expect(nomad.bodyAt('127.0.0.1', nomadSpec().processes.web.port)).toBe(
      task.Config.image.split(':').at(-1),
    );

    // The Nomad token went to Nomad only.
    const { body: logs } = await call('GET', `/api/runs/${deployed.id}/events`);
    expect(JSON.stringify(logs)).not.toContain(NOMAD_TOKEN);
    expect(JSON.stringify(deployed.steps)).not.toContain(NOMAD_TOKEN);
    expect(nomad.requests.every((q) => q.headers['x-nomad-token'] === NOMAD_TOKEN)).toBe(true);
  }, 240_000);

  it("a crash-looping release fails with its task events; Nomad's auto-revert is reported and the release record says so", async () => {
    expect((await call('POST', '/api/apps', nomadSpec({ FAKE_NOMAD_CRASH: '1' }))).status).toBe(
      200,
    );
    const versionsBefore = nomad.versions(APP).length;
    const failed = await run('POST', `/api/apps/${APP}/deploy`, { ref: 'main' });
    expect(failed.done.status).toBe('failed');
    const healthy = failed.steps.find((s) => s.name === 'healthy')!;
    expect(healthy.status).toBe('failed');
    expect(healthy.error).toMatch(/Terminated \(exit code 1\)/);
    expect(healthy.error).toContain('Nomad reverted to job version 0 (release 1)');
    expect(healthy.error).toMatch(/rolled back to release 1/);
    const release = await fleet.services.releases.byDeployment(failed.id);
    expect(release!.status).toBe('rolled_back');
    expect(release!.error).toContain('Nomad reverted to job version 0');
    // The revert is alerted (NORN_ALERT_WEBHOOK_URLS).
    const reverted = receiver.alerts.filter((a) => a.kind === 'deploy.reverted');
    expect(reverted).toHaveLength(1);
    expect(reverted[0]).toMatchObject({ subject: `app:${APP}`, runId: failed.id });
    expect(reverted[0]!.summary).toContain('Nomad reverted to job version 0');
    // Two versions more: the release's, and Nomad's revert; norn registered nothing after it.
    expect(nomad.versions(APP).length).toBe(versionsBefore + 2);
    expect(nomad.job(APP)!['Meta']).toMatchObject({ 'norn.release': '1' });
  }, 240_000);

  it('teardown deregisters the jobs and removes the routes', async () => {
    const torn = await run('DELETE', `/api/apps/${APP}/forge`);
    expect([torn.done.status, torn.done.error]).toEqual(['succeeded', null]);
    expect(outputOf(torn.events, 'delete-deployment')).toMatchObject({
      deleted: [{ kind: 'Job', name: APP }],
    });
    expect(nomad.job(APP)!['Stop']).toBe(true);
    expect(rules().map((r) => r.hostname ?? '*')).toEqual(['ops.example.com', '*']);
  }, 120_000);
});
