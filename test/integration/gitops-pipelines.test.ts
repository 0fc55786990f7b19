/**
 * The GitOps pipelines end to end on a real fleet (PostgreSQL, Redis, an api and a worker running
 * the built-in pipelines with the real step services), driven by signed webhook deliveries of
 * GitHub's published payloads, against a git repository of the test's own, the tofu stand-in
 * (test/support/tofu; and the same again with real tofu when one is on PATH), a fake GitHub API
 * (@octokit/rest talks to it) and an alert receiver:
 * - a review posts its plan as one comment and a commit status, then edits that comment;
 * - a release applies the plan it saved, once, and reports an interrupted apply;
 * - a stale plan is refused by tofu, and the run says so;
 * - drift is detected once, not re-alerted, then cleared; an error is not drift.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinPipelines, createStepServices } from '../../src/pipelines/index.js';
import type { DeployServices } from '../../src/pipelines/deploy/types.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { NornSystem, RunningApi } from '../../src/system.js';
import { startAlertReceiver, type ReceivedAlert } from '../support/alert-receiver.js';
import { dockerUp } from '../support/docker/engine.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startFakeGitHub, GITHUB_BOT, type FakeGitHub } from '../support/forges/github.js';
import { createInfraRepo, STACK_PATH, type InfraRepo } from '../support/gitops/infra-repo.js';
import { apiCaller, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';
import { delivery, fixture } from '../support/webhooks.js';

const TOKEN = 'gitops-api-token-0123456789';
const SECRET = 'stack-webhook-secret-0123456789';
const GH_TOKEN = 'ghp_fake_token_for_the_fake_github';
const STANDIN = fileURLToPath(new URL('../support/tofu/tofu', import.meta.url));
const which = spawnSync('which', ['tofu'], { encoding: 'utf8' });
const REAL = which.status === 0 ? which.stdout.trim() : undefined;
/** The stand-in always; real OpenTofu too when it is on PATH (its hold hooks are the stand-in's). */
const BINARIES = [
  { name: 'the tofu stand-in', bin: STANDIN, hooks: true },
  {
    name: REAL ? `real tofu (${REAL})` : 'real tofu (skipped: none on PATH)',
    bin: REAL,
    hooks: false,
  },
];
const PR = 7;

let tdb: TestDatabase;
let system: NornSystem<DeployServices>;
let services: DeployServices;
let api: RunningApi;
let gh: FakeGitHub;
let repo: InfraRepo;
let work: string;
let receiver: Awaited<ReturnType<typeof startAlertReceiver>>;
let alerts: ReceivedAlert[];
let closeSteps: () => Promise<void>;
const call = apiCaller(() => api, TOKEN);

/** GitHub's published pull_request payload, aimed at this test's repository and commits. */
async function deliverPull(action: 'opened' | 'synchronize', head: string, base: string, pr = PR) {
  const payload = fixture('github', `pull_request.${action}`);
  payload.number = pr;
  payload.pull_request.number = pr;
  payload.pull_request.head.sha = head;
  payload.pull_request.head.ref = 'feature';
  payload.pull_request.base.sha = base;
  payload.pull_request.base.ref = 'main';
  payload.repository.clone_url = repo.url;
  payload.repository.default_branch = 'main';
  return deliver('pull_request', payload);
}

async function deliverPush(after: string, before: string) {
  const payload = fixture('github', 'push.default-branch');
  payload.ref = 'refs/heads/main';
  payload.after = after;
  payload.before = before;
  payload.deleted = false;
  payload.repository.clone_url = repo.url;
  payload.repository.default_branch = 'main';
  return deliver('push', payload);
}

async function deliver(event: string, payload: unknown) {
  const d = delivery('github', event, JSON.stringify(payload), SECRET);
  const res = await fetch(`${api.url}/webhooks/github`, {
    method: 'POST',
    headers: d.headers,
    body: d.body,
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read what they expect
  const body = (await res.json()) as any;
  expect(res.status, JSON.stringify(body)).toBe(202);
  const started = body.routed.find((r: { kind: string }) => r.kind === 'stack');
  expect(started?.started, JSON.stringify(body)).toBeTruthy();
  return started.started as string;
}

/** The run (once it ended with `status`) with its steps, each with its recorded output. */
const finished = async (runId: string, status: 'succeeded' | 'failed' = 'succeeded') => {
  const run = await waitForRun(system, runId, undefined, 60_000);
  // Its end hooks (statuses, drift state, events, alerts) run just after: wait for them too.
  const hooks = await waitFor(async () => {
    const { rows } = await system.db.query<{ hook: string; status: string; error: string | null }>(
      'SELECT hook, status, error FROM run_hooks WHERE run_id = $1',
      [runId],
    );
    return rows.every((h) => h.status !== 'pending') && rows;
  }, `the hooks of run ${runId}`);
  expect(hooks.filter((h) => h.status === 'failed')).toEqual([]);
  const view = await runView(runId);
  expect(run.status, JSON.stringify(view.steps, null, 2)).toBe(status);
  return view;
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read what they expect
async function runView(runId: string): Promise<any> {
  const { body } = await call('GET', `/api/runs/${runId}`);
  const { rows } = await system.db.query<{ name: string; output: unknown }>(
    'SELECT name, output FROM run_steps WHERE run_id = $1',
    [runId],
  );
  const outputs = new Map(rows.map((r) => [r.name, r.output]));
  return {
    ...body.run,
    steps: (body.steps as Array<{ name: string }>).map((st) => ({
      ...st,
      output: outputs.get(st.name),
    })),
  };
}

const events = async (type: string) =>
  (await system.events.byAppNewestFirst('platform', undefined, 500)).filter((e) => e.type === type);

/** The stack's spec as the tests register it, with `extra` over it. */
const stackSpec = (extra: Record<string, unknown> = {}) => ({
  name: 'platform',
  repo: { url: repo.url, branch: 'main' },
  path: STACK_PATH,
  feedback: { provider: 'github', repo: 'acme/infra', apiUrl: gh.url, tokenEnv: 'GH_TOKEN' },
  ...extra,
});

const statuses = (sha: string) =>
  gh.data.statuses.filter((s) => s.sha === sha && s.context === 'norn/plan/platform');

const botComments = () => gh.data.comments(PR).filter((c) => c.author === GITHUB_BOT);

/**
 * A release of `sha` whose apply the stand-in holds after its first change (one of `files`
 * written, its state saved); resolves then, with the run and the plan it applies.
 */
async function releaseHeldInApply(sha: string, files: string[]) {
  services.gitops.env.TOFU_STANDIN_HOLD_APPLY_MS = '60000';
  try {
    const id = (await call('POST', '/api/stacks/platform/release', { commitSha: sha })).body
      .runId as string;
    await waitFor(
      async () => files.some((f) => existsSync(join(repo.infra, `${f}.txt`))),
      'the first change applied',
      60_000,
    );
    const view = await runView(id);
    return { id, planId: view.steps[2].output.planId as number };
  } finally {
    delete services.gitops.env.TOFU_STANDIN_HOLD_APPLY_MS;
  }
}

/** Cancels run `id` (tofu is stopped mid-apply), resumes it, and answers the resumed apply step. */
async function cancelAndResume(id: string) {
  await call('POST', `/api/runs/${id}/cancel`);
  await waitForRun(system, id, ['cancelled'], 30_000);
  const resumed = (await call('POST', `/api/runs/${id}/resume`)).body.runId as string;
  const run = await finished(resumed, 'failed');
  const apply = run.steps.find((s: { name: string }) => s.name === 'apply');
  expect(apply.status).toBe('failed');
  return apply;
}

let main0: string;
let reviewed: string;

for (const binary of BINARIES)
  describe.skipIf(!binary.bin)(`the GitOps pipelines, with ${binary.name}`, () => {
    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'norn-gitops-'));
      repo = createInfraRepo(work);
      gh = await startFakeGitHub({ token: GH_TOKEN, repo: 'acme/infra' });
      receiver = await startAlertReceiver();
      alerts = receiver.alerts;
      tdb = await createTestDatabase();
      system = testSystem<DeployServices>(
        testEnv(tdb.url, {
          NORN_API_TOKEN: TOKEN,
          NORN_DEPLOY_PIPELINE: 'deploy',
          NORN_WORK_DIR: join(work, 'runs'),
          NORN_HOOK_POLL_MS: '50',
          NORN_TOFU_BIN: binary.bin!,
          NORN_PUBLIC_URL: 'http://norn.test:8080/',
          NORN_ALERT_WEBHOOK_URLS: receiver.url,
        }),
        builtinPipelines(),
      );
      const step = createStepServices(
        system.config,
        { PATH: process.env.PATH, HOME: '/nonexistent', GH_TOKEN },
        system.stepDb,
        silentLogger,
      );
      services = step.services;
      closeSteps = step.close;
      system.setServices(step.services, step.extraQueues);
      await system.startWorker();
      api = await system.startApi(0);
    }, 60_000);

    afterAll(async () => {
      await system?.close();
      await closeSteps?.();
      await tdb?.drop();
      await gh?.close();
      await receiver?.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('registers the stack and schedules its drift check', async () => {
      main0 = repo.commit('main', { a: 'alpha\n' }, 'first');
      const res = await call('POST', '/api/stacks', {
        name: 'platform',
        repo: { url: repo.url, branch: 'main' },
        path: STACK_PATH,
        webhookSecret: SECRET,
        feedback: { provider: 'github', repo: 'acme/infra', apiUrl: gh.url, tokenEnv: 'GH_TOKEN' },
        drift: { schedule: '0 6 * * *', timezone: 'Europe/Berlin' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(JSON.stringify(res.body)).not.toContain(SECRET);
      const schedulers = await system.runs.queue('drift-schedules').getJobSchedulers(0, -1);
      expect(schedulers.map((s) => [s.key ?? s.id, s.pattern, s.tz])).toContainEqual([
        'drift:stack:platform',
        '0 6 * * *',
        'Europe/Berlin',
      ]);
      // Apps and stacks share one namespace.
      const clash = await call('POST', '/api/apps', {
        name: 'platform',
        processes: { web: { port: 18_111 } },
      });
      expect(clash.status).toBe(409);
      expect(clash.body.error.message).toMatch(/taken by a stack/);
    });

    it('reviews a pull request: one comment with the plan and a commit status, edited on a new push', async () => {
      gh.data.seed(PR, ['please plan this']);
      const head1 = repo.commit('feature', { a: 'alpha\n', b: 'beta\n' }, 'add b');
      const run1 = await finished(await deliverPull('opened', head1, main0));
      expect(run1.scope).toBe(`review:platform#${PR}`);
      expect(run1.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
        ['validate', 'complete'],
        ['plan', 'complete'],
      ]);
      const [comment] = botComments();
      expect(botComments()).toHaveLength(1);
      expect(comment!.body).toContain('<!-- norn:plan:platform -->');
      expect(comment!.body).toContain('Plan: 2 to add, 0 to change, 0 to destroy.');
      expect(comment!.body).toContain('`local_file.b`');
      const plan1 = run1.steps[1].output;
      expect(comment!.body).toContain(`http://norn.test:8080/api/plans/${plan1.planId}`);
      await waitFor(
        async () => statuses(head1).some((s) => s.state === 'success'),
        'success status',
      );
      expect(statuses(head1).map((s) => s.state)).toEqual(['pending', 'success']);
      // Nothing is applied by a review.
      expect(existsSync(join(repo.infra, 'a.txt'))).toBe(false);

      // The stored plan: file, digest, commits, summary; the file downloads as recorded.
      const stored = (await call('GET', `/api/plans/${plan1.planId}`)).body.plan;
      expect(stored).toMatchObject({
        kind: 'review',
        pullRequest: PR,
        commits: { base: main0, head: head1 },
        sha256: plan1.sha256,
        summary: { add: 2, change: 0, destroy: 0 },
      });

      // A new push to the pull request: the same comment, edited.
      const head2 = repo.commit('feature', { a: 'alpha\n', b: 'beta\n', c: 'gamma\n' }, 'add c');
      const run2 = await finished(await deliverPull('synchronize', head2, main0));
      expect(botComments()).toHaveLength(1);
      expect(botComments()[0]!.id).toBe(comment!.id);
      expect(botComments()[0]!.body).toContain('Plan: 3 to add');
      expect(botComments()[0]!.body).toContain(head2.slice(0, 12));
      expect(gh.data.comments(PR)).toHaveLength(2); // the reviewer's and norn's
      expect(run2.steps[1].output.planId).not.toBe(plan1.planId);
      reviewed = head2;
    }, 120_000);

    it.skipIf(!binary.hooks)(
      'supersedes a running review by a newer push to the same pull request',
      async () => {
        gh.data.seed(8, []);
        services.gitops.env.TOFU_STANDIN_HOLD_PLAN_MS = '60000';
        let first: string;
        let h1: string;
        try {
          h1 = repo.commit('other', { a: 'alpha\n', o: 'one\n' }, 'o');
          first = await deliverPull('opened', h1, main0, 8);
          await waitFor(
            async () =>
              (await runView(first)).steps.find((st: { name: string }) => st.name === 'plan')
                ?.status === 'running',
            'the first review planning',
            60_000,
          );
        } finally {
          delete services.gitops.env.TOFU_STANDIN_HOLD_PLAN_MS;
        }
        const h2 = repo.commit('other', { a: 'alpha\n', o: 'two\n' }, 'o again');
        const second = await deliverPull('synchronize', h2, main0, 8);
        expect((await waitForRun(system, first, undefined, 30_000)).status).toBe('cancelled');
        await finished(second);
        await waitFor(async () => statuses(h1).at(-1)?.state === 'error', 'the superseded status');
        expect(statuses(h2).map((st) => st.state)).toEqual(['pending', 'success']);
        const mine = gh.data.comments(8).filter((c) => c.author === GITHUB_BOT);
        expect(mine).toHaveLength(1);
        expect(mine[0]!.body).toContain(h2.slice(0, 12));
      },
      120_000,
    );

    it('releases the merge: the plan it saved is applied exactly, once, and matches the review', async () => {
      repo.setBranch('main', reviewed);
      const run = await finished(await deliverPush(reviewed, main0));
      expect(run.scope).toBe('stack:platform');
      expect(run.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
        ['validate', 'complete'],
        ['build', 'skipped'],
        ['plan', 'complete'],
        ['apply', 'complete'],
        ['verify', 'skipped'],
      ]);
      expect(readFileSync(join(repo.infra, 'c.txt'), 'utf8')).toBe('gamma\n');
      const planId = run.steps[2].output.planId as number;
      const plan = (await call('GET', `/api/plans/${planId}`)).body.plan;
      expect(plan.kind).toBe('release');
      expect(plan.apply).toMatchObject({ runId: run.id, error: null });
      expect(plan.apply.appliedAt).toEqual(expect.any(String));
      const review = (await call('GET', `/api/stacks/platform/plans?kind=review&pullRequest=${PR}`))
        .body.plans[0];
      expect(review.headSha).toBe(reviewed);
      expect(plan.summary).toEqual(review.summary);

      // A run that re-ran apply after its worker died mid-apply would find the mark and refuse.
      const marked = await services.gitops.plans.beginApply(planId, 'another-run');
      expect(marked).toMatchObject({ action: 'applied', apply: { runId: run.id } });
    }, 120_000);

    it.skipIf(!binary.hooks)(
      'refuses a blind re-run of an apply its worker never finished ("interrupted apply")',
      async () => {
        const sha = repo.commit('main', { a: 'alpha\n', b: 'beta\n', c: 'gamma\n', d: 'delta\n' });
        // While apply holds, make its mark that of a worker that died before it could write the end
        // (the cancel then stops tofu, and its end no longer matches the mark).
        const { id, planId } = await releaseHeldInApply(sha, ['d']);
        await system.stepDb.query(
          `UPDATE plan_artifacts SET apply_run_id = 'a-killed-worker' WHERE id = $1`,
          [planId],
        );
        const apply = await cancelAndResume(id);
        expect(apply.error).toMatch(
          /^CONFLICT: interrupted apply, state must be checked: applying plan \d+ began/,
        );
        expect(apply.errorCode).toBe('CONFLICT');
        const failed = alerts.filter((a) => a.kind === 'release.failed');
        expect(failed.at(-1)?.summary).toMatch(/interrupted apply/);
      },
      120_000,
    );

    it.skipIf(!binary.hooks)(
      'refuses a stale plan: tofu says the state changed since it was made',
      async () => {
        const sha = repo.commit('main', { a: 'alpha\n', e: 'epsilon\n', f: 'phi\n' });
        // Apply holds after its first change, with the state written: cancel it there, and resume:
        // the same saved plan again, which that partial apply made stale.
        const { id } = await releaseHeldInApply(sha, ['e', 'f']);
        const apply = await cancelAndResume(id);
        expect(apply.error).toMatch(
          /^CONFLICT: Saved plan is stale: the state changed after plan \d+ was made/,
        );
      },
      120_000,
    );

    it('detects drift once, does not alert again for the same drift, then sees it cleared', async () => {
      // Bring the infrastructure in line with main first.
      const head = repo.commit('main', { a: 'alpha\n', b: 'beta\n' }, 'settle');
      await finished(
        (await call('POST', '/api/stacks/platform/release', { commitSha: head })).body.runId,
      );
      const check = async () =>
        finished((await call('POST', '/api/stacks/platform/drift-check')).body.runId);
      const clean = await check();
      expect(clean.scope).toBe('drift:platform');
      expect(clean.steps[0].output.status).toBe('clean');
      expect(await events('drift.detected')).toHaveLength(0);

      writeFileSync(join(repo.infra, 'b.txt'), 'changed by hand\n');
      const drifted = await check();
      expect(drifted.steps[0].output.status).toBe('drifted');
      const detected = await events('drift.detected');
      expect(detected).toHaveLength(1);
      expect(detected[0]!.payload).toMatchObject({
        stack: 'platform',
        fingerprint: drifted.steps[0].output.fingerprint,
      });
      await waitFor(async () => alerts.some((a) => a.kind === 'drift.detected'), 'drift alert');
      const state = (await call('GET', '/api/stacks/platform/drift')).body.drift;
      expect(state).toMatchObject({
        status: 'drifted',
        fingerprint: drifted.steps[0].output.fingerprint,
      });

      // The same drift again: recorded, not reported again.
      const again = await check();
      expect(again.steps[0].output.fingerprint).toBe(drifted.steps[0].output.fingerprint);
      expect(await events('drift.detected')).toHaveLength(1);
      expect(alerts.filter((a) => a.kind === 'drift.detected')).toHaveLength(1);

      writeFileSync(join(repo.infra, 'b.txt'), 'beta\n');
      await check();
      const cleared = await events('drift.cleared');
      expect(cleared).toHaveLength(1);
      expect((await call('GET', '/api/stacks/platform/drift')).body.drift.status).toBe('clean');
      await waitFor(async () => alerts.some((a) => a.kind === 'drift.cleared'), 'cleared alert');
    }, 180_000);

    it('takes an error for an error, never for drift or clean, and alerts once per error', async () => {
      repo.commitRaw('main', {
        'main.tf.json': '{"resource": {"local_file": {"x": {"content": 1,',
      });
      const check = async () =>
        finished((await call('POST', '/api/stacks/platform/drift-check')).body.runId, 'failed');
      const failed = await check();
      expect(failed.steps[0].error).toMatch(/could not plan|tofu init failed/);
      const errors = await events('drift.error');
      expect(errors).toHaveLength(1);
      expect(errors[0]!.payload).toMatchObject({ stack: 'platform' });
      const state = (await call('GET', '/api/stacks/platform/drift')).body.drift;
      expect(state.status).toBe('clean'); // as the last check that could tell found it
      expect(state.lastError).toEqual(expect.stringMatching(/./));
      await check();
      expect(await events('drift.error')).toHaveLength(2);
      await waitFor(async () => alerts.some((a) => a.kind === 'drift.error'), 'error alert');
      expect(alerts.filter((a) => a.kind === 'drift.error')).toHaveLength(1);
      expect(await events('drift.detected')).toHaveLength(1);
    }, 120_000);

    it('fails a release whose verify check fails, naming the check and why, and alerts verify.failed', async () => {
      const probe = createServer((req, res) => {
        if (req.url === '/healthz') res.writeHead(200).end('all ok');
        else res.writeHead(503).end('warming up');
      });
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      const base = `http://127.0.0.1:${(probe.address() as { port: number }).port}`;
      try {
        const registered = await call('POST', '/api/stacks', {
          name: 'platform',
          repo: { url: repo.url, branch: 'main' },
          path: STACK_PATH,
          feedback: {
            provider: 'github',
            repo: 'acme/infra',
            apiUrl: gh.url,
            tokenEnv: 'GH_TOKEN',
          },
          verify: [
            { http: { url: `${base}/healthz`, contains: 'ok', deadline: '2s' } },
            { http: { url: `${base}/ready`, status: 200, deadline: '2s' } },
          ],
        });
        expect(registered.status, JSON.stringify(registered.body)).toBe(200);
        const sha = repo.commit('main', { a: 'alpha\n', b: 'beta\n', g: 'gamma\n' }, 'add g');
        const id = (await call('POST', '/api/stacks/platform/release', { commitSha: sha })).body
          .runId as string;
        const run = await finished(id, 'failed');
        expect(
          run.steps.map((st: { name: string; status: string }) => [st.name, st.status]),
        ).toEqual([
          ['validate', 'complete'],
          ['build', 'skipped'],
          ['plan', 'complete'],
          ['apply', 'complete'],
          ['verify', 'failed'],
        ]);
        const verify = run.steps[4];
        expect(verify.error).toMatch(new RegExp(`verify failed: http ${base}/ready: HTTP 503`));
        expect(verify.error).not.toContain('/healthz');
        const alert = alerts.filter((a) => a.kind === 'verify.failed');
        expect(alert).toHaveLength(1);
        expect(alert[0]).toMatchObject({ subject: 'stack:platform', runId: id });
        expect(alert[0]!.summary).toContain(`${base}/ready`);
      } finally {
        await new Promise((r) => probe.close(r));
      }
    }, 120_000);

    it("builds the images a stack declares, with the deploy's builder, into the registry", async () => {
      await dockerUp();
      expect(
        (
          await call(
            'POST',
            '/api/stacks',
            stackSpec({ images: [{ name: 'web', dockerfile: 'app/Dockerfile' }] }),
          )
        ).status,
      ).toBe(200);
      mkdirSync(join(repo.dir, 'app'), { recursive: true });
      copyFileSync('/bin/busybox', join(repo.dir, 'app', 'busybox'));
      writeFileSync(
        join(repo.dir, 'app', 'Dockerfile'),
        'FROM scratch\nCOPY app/busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n',
      );
      const sha = repo.commit('main', { a: 'alpha\n', b: 'beta\n' }, 'an image');
      const run = await finished(
        (await call('POST', '/api/stacks/platform/release', { commitSha: sha })).body.runId,
      );
      const build = run.steps.find((st: { name: string }) => st.name === 'build');
      expect(build.status).toBe('complete');
      const ref = services.docker!.imageRef('platform-web', sha);
      expect(build.output).toEqual({ images: [ref] });
      expect(await services.docker!.registryHasImage('platform-web', sha)).toBe(true);
    }, 180_000);

    it.skipIf(!binary.hooks)(
      'a scheduled tick requests a drift check, and ticks never pile up (coalesce)',
      async () => {
        expect((await call('POST', '/api/stacks', stackSpec())).status).toBe(200);
        const queue = system.runs.queue('drift-schedules');
        const tick = async (id: string) => {
          await queue.add('drift-check', { stack: 'platform' }, { jobId: id });
          return waitFor(async () => {
            const job = await queue.getJob(id);
            return (
              job &&
              (await job.isCompleted()) &&
              (job.returnvalue as { runId: string; coalesced: boolean })
            );
          }, `tick ${id}`);
        };
        services.gitops.env.TOFU_STANDIN_HOLD_PLAN_MS = '3000';
        try {
          const t1 = await tick('tick-1');
          expect(t1.coalesced).toBe(false);
          await waitForRun(system, t1.runId, ['running']);
          const t2 = await tick('tick-2'); // queued behind the running check
          const t3 = await tick('tick-3'); // that queued check is this tick's too
          expect(t2.coalesced).toBe(false);
          expect(t3).toEqual({ runId: t2.runId, coalesced: true });
          const requested = await system.store.listRunsInScope('drift:platform', 100);
          expect(requested.filter((r) => r.requestedBy?.startsWith('schedule:tick-'))).toHaveLength(
            2,
          );
          await finished(t1.runId);
          await finished(t2.runId);
        } finally {
          delete services.gitops.env.TOFU_STANDIN_HOLD_PLAN_MS;
        }
      },
      120_000,
    );
  });
