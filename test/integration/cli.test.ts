/** The `norn` CLI as a child process against a real api + worker: output lines and exit codes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotTable } from '../../src/cli/commands/snapshots.js';
import { formatBytes, formatDuration } from '../../src/cli/render.js';
import { snapshot } from '../../src/pipelines/deploy/steps/snapshot.js';
import type { DeployServices, SnapshotOutput } from '../../src/pipelines/deploy/types.js';
import { restorePipeline } from '../../src/pipelines/restore.js';
import type { PipelineDefinition } from '../../src/queues/pipeline.js';
import type { EventEnvelope } from '../../src/shared/events.js';
import type { NornSystem, RunningApi } from '../../src/system.js';
import {
  deploymentIdIn,
  expectNineCompleteSteps,
  freePort,
  stepLines,
  UUID,
} from '../support/cli/expect-output.js';
import { runCli, startCli } from '../support/cli/norn-cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import {
  appDbName,
  appDbUrl,
  createDatabase,
  dropDatabase,
  registerSpec,
  sql,
  startSystem,
} from '../support/deploy-data/harness.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';
import { spawnNorn, TEST_PIPELINES } from '../support/processes.js';

const TOKEN = 'cli-token-0123456789abcdef';
let tdb: TestDatabase;
let env: Record<string, string>;
let system: NornSystem;
let api: RunningApi;
let cliEnv: Record<string, string>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  env = testEnv(tdb.url, { NORN_API_TOKEN: TOKEN, NORN_PIPELINES_MODULE: TEST_PIPELINES });
  system = testSystem(env);
  await system.startWorker();
  api = await system.startApi(0);
  cliEnv = { NORN_API_URL: api.url, NORN_API_TOKEN: TOKEN };
});
afterAll(async () => {
  await system?.close();
  await tdb?.drop();
});

describe('norn deploy', () => {
  it('follows a deploy to the end: nine step lines with durations, a summary with the image tag, exit 0', async () => {
    await registerApp(system, 'cli-ok');
    const r = await runCli(['deploy', 'cli-ok', '--ref', 'main'], cliEnv);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^deploying cli-ok at main: deployment ${UUID}$`, 'm'));
    expectNineCompleteSteps(r.stdout);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^deployed cli-ok test:9 in \d+(\.\d)?(ms|s)$/);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    const run = await system.store.getRun(deploymentIdIn(r.stdout)!);
    expect(run).toMatchObject({ status: 'succeeded', params: { ref: 'main' } });
  }, 60_000);

  it("exits 1 with the failing step's error; logs replays the run; resume follows the rerun", async () => {
    await registerApp(system, 'cli-fail');
    const r = await runCli(['deploy', 'cli-fail', '--ref', 'fail-s3'], cliEnv);
    expect(r.code, r.stderr).toBe(1);
    expect(stepLines(r.stdout, 's3')).toEqual([
      expect.stringMatching(/^\[3\/9\] s3 +running$/),
      '[3/9] s3         failed: STEP_FAILED: s3 failed because the ref said so',
    ]);
    expect(stepLines(r.stdout, 's4')).toEqual([]);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(
      'deploy of cli-fail failed at s3: STEP_FAILED: s3 failed because the ref said so',
    );
    const id = deploymentIdIn(r.stdout)!;

    const logs = await runCli(['logs', id], cliEnv);
    expect(logs.code, logs.stderr).toBe(0);
    const logLines = logs.stdout.trim().split('\n');
    expect(logLines[0]).toMatch(
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d · deploy queued \\(deployment ${id}\\)$`),
    );
    expect(logLines).toContainEqual(
      expect.stringMatching(/^\d\d:\d\d:\d\d ✓ \[1\/9\] s1 +complete \d/),
    );
    expect(logLines).toContainEqual(
      expect.stringMatching(
        /^\d\d:\d\d:\d\d ✗ \[3\/9\] s3 +failed: STEP_FAILED: s3 failed because the ref said so$/,
      ),
    );
    expect(logLines.at(-1)).toMatch(
      /^\d\d:\d\d:\d\d ✗ deploy of cli-fail failed at s3: STEP_FAILED: s3 failed because the ref said so$/,
    );

    const stepLog = await runCli(['logs', id, '--step', 's2'], cliEnv);
    expect(stepLog.code, stepLog.stderr).toBe(0);
    expect(stepLog.stdout.trim()).toBe('s2 says hello');

    const json = await runCli(['logs', id, '--json'], cliEnv);
    const events = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as EventEnvelope);
    const sagaId = (await system.store.getRun(id))!.sagaId;
    expect(events.map((e) => e.id)).toEqual((await system.events.bySaga(sagaId)).map((e) => e.id));

    const resumed = await runCli(['resume', id], cliEnv);
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(resumed.stdout).toMatch(new RegExp(`^resuming ${id}: deployment ${UUID}$`, 'm'));
    expect(stepLines(resumed.stdout, 's1')).toEqual([
      `[1/9] s1         skipped (completed by run ${id})`,
    ]);
    expect(stepLines(resumed.stdout, 's2')).toEqual([
      `[2/9] s2         skipped (completed by run ${id})`,
    ]);
    expect(resumed.stdout).toContain(
      '[3/9] s3         failed: STEP_FAILED: s3 failed because the ref said so',
    );
    const newId = new RegExp(`resuming ${id}: deployment (${UUID})`).exec(resumed.stdout)![1]!;
    expect(await system.store.getRun(newId)).toMatchObject({ status: 'failed', resumedFrom: id });
  }, 60_000);

  it('a follower exits 1 saying "cancelled" when another `norn cancel` stops the run', async () => {
    await registerApp(system, 'cli-cancel');
    const follower = startCli(['deploy', 'cli-cancel', '--ref', 'sleep-10000'], cliEnv);
    await follower.waitForOutput(/\[2\/9\] s2 +running/);
    const id = deploymentIdIn(follower.stdout())!;
    const t0 = Date.now();
    const c = await runCli(['cancel', id], cliEnv);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(new RegExp(`^deployment ${id} is (cancelling|cancelled)`));
    expect(await follower.exited).toBe(1);
    expect(Date.now() - t0).toBeLessThan(8_000);
    const out = follower.stdout();
    expect(stepLines(out, 's2')).toEqual([
      expect.stringMatching(/running$/),
      '[2/9] s2         cancelled',
    ]);
    expect(out.trim().split('\n').at(-1)).toMatch(/^deploy of cli-cancel cancelled at s2$/);
    expect((await system.store.getRun(id))!.status).toBe('cancelled');

    const again = await runCli(['cancel', id], cliEnv);
    expect(again.stdout).toContain(`deployment ${id} is cancelled`);
  }, 60_000);

  it('says how many runs are ahead, and under policy reject names the holder and exits 3', async () => {
    await registerApp(system, 'cli-queue');
    const first = await runCli(['deploy', 'cli-queue', '--ref', 'sleep-1500', '--no-wait'], cliEnv);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(
      `follow it with: norn logs ${deploymentIdIn(first.stdout)} --follow`,
    );
    const second = await runCli(['deploy', 'cli-queue'], cliEnv);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^queued behind 1 run\(s\)$/m);
    expectNineCompleteSteps(second.stdout);

    await registerApp(system, 'cli-reject', { deployPolicy: { concurrency: 'reject' } });
    const busy = await runCli(
      ['deploy', 'cli-reject', '--ref', 'sleep-10000', '--no-wait'],
      cliEnv,
    );
    const busyId = deploymentIdIn(busy.stdout)!;
    await waitForRun(system, busyId, ['running']);
    const refused = await runCli(['deploy', 'cli-reject'], cliEnv);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`cli-reject is held by deployment ${busyId} (chain, running;`);
    expect(refused.stderr).toContain(
      `norn: app:cli-reject is busy with run ${busyId} (chain, running; policy: reject)`,
    );
    expect((await runCli(['cancel', busyId], cliEnv)).code).toBe(0);
    await waitForRun(system, busyId);
  }, 60_000);
});

describe('norn status', () => {
  it("lists every app with its latest deployment, and shows one app's lease, queue and runs", async () => {
    await registerApp(system, 'cli-status');
    await registerApp(system, 'cli-status-new');
    expect((await runCli(['deploy', 'cli-status', '--ref', 'v1.2'], cliEnv)).code).toBe(0);

    const all = await runCli(['status'], cliEnv);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^APP +STATUS +REF +WHEN +DEPLOYMENT$/m);
    expect(all.stdout).toMatch(
      new RegExp(`^cli-status +succeeded +v1\\.2 +(just now|\\d+s ago) +${UUID}$`, 'm'),
    );
    expect(all.stdout).toMatch(/^cli-status-new +never deployed +- +- +-$/m);

    const one = await runCli(['status', 'cli-status'], cliEnv);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain('idle: no run holds the app');
    expect(one.stdout).toMatch(
      new RegExp(`^${UUID} +succeeded +v1\\.2 +\\S.* +\\d+(\\.\\d)?(ms|s)$`, 'm'),
    );

    const json = await runCli(['status', 'cli-status', '--json'], cliEnv);
    const parsed = JSON.parse(json.stdout);
    expect(parsed).toMatchObject({
      app: 'cli-status',
      lease: { holder: null, waiting: [] },
      deployments: [{ status: 'succeeded', params: { ref: 'v1.2' } }],
    });
  }, 60_000);

  it('shows the holder and the waiting runs of a busy app', async () => {
    await registerApp(system, 'cli-busy');
    const a = deploymentIdIn(
      (await runCli(['deploy', 'cli-busy', '--ref', 'sleep-10000', '--no-wait'], cliEnv)).stdout,
    )!;
    const b = deploymentIdIn(
      (await runCli(['deploy', 'cli-busy', '--ref', 'next', '--no-wait'], cliEnv)).stdout,
    )!;
    await waitForRun(system, a, ['running']);
    const r = await runCli(['status', 'cli-busy'], cliEnv);
    expect(r.stdout).toContain(`held by deployment ${a} (chain, running) on worker`);
    expect(r.stdout).toMatch(
      new RegExp(
        `^waiting \\(1, in the order they will run\\):\\n  ${b}  chain  ref next  requested`,
        'm',
      ),
    );
    await runCli(['cancel', a], cliEnv);
    await runCli(['cancel', b], cliEnv);
    await waitForRun(system, a);
  }, 60_000);
});

describe('failures before any run', () => {
  it('a wrong token is exit 3 with a clear message that never shows a token', async () => {
    const wrong = 'wrong-token-that-must-not-leak';
    const r = await runCli(['status'], { NORN_API_URL: api.url, NORN_API_TOKEN: wrong });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /refused the request: missing or wrong API token \(401\); set NORN_API_TOKEN or pass --token/,
    );
    const flag = await runCli(['deploy', 'cli-ok', '--token', wrong, '--api', api.url], {});
    expect(flag.code).toBe(3);
    expect(flag.stderr).toMatch(/401/);
    for (const out of [r.stdout, r.stderr, flag.stdout, flag.stderr])
      expect(out).not.toContain(wrong);
  }, 30_000);

  it('a wrong token that is a word of the message leaves the message whole; a real one is scrubbed', async () => {
    for (const wrong of ['wrong', 'token', 'missing']) {
      const r = await runCli(['status'], { NORN_API_URL: api.url, NORN_API_TOKEN: wrong });
      expect(r.code).toBe(3);
      expect(r.stderr).toBe(
        `norn: the api at ${api.url} refused the request: missing or wrong API token (401); set NORN_API_TOKEN or pass --token\n`,
      );
    }
    // The real token typed where a run id goes: the api's answer names it, the CLI does not.
    const echoed = await runCli(['logs', TOKEN], cliEnv);
    expect(echoed.code).toBe(3);
    expect(echoed.stderr).toBe('norn: run *** not found\n');
  }, 30_000);

  it('an unreachable api is exit 3; bad usage is exit 2', async () => {
    const port = await freePort();
    const r = await runCli(['status', '--api', `http://127.0.0.1:${port}`], {
      NORN_API_TOKEN: TOKEN,
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `norn: cannot reach the norn api at http://127.0.0.1:${port}: ECONNREFUSED\n`,
    );

    const usage = await Promise.all([
      runCli(['deploy'], cliEnv),
      runCli(['frobnicate'], cliEnv),
      runCli(['logs', 'x', '--bogus'], cliEnv),
      runCli(['status', '--api', 'ftp://nowhere'], cliEnv),
      runCli([], cliEnv),
    ]);
    for (const u of usage) expect(u.code, u.stderr).toBe(2);
    expect(usage[0]!.stderr).toContain('usage: norn deploy <app> [--ref <ref>] [--no-wait]');
    expect(usage[1]!.stderr).toContain('unknown command "frobnicate"');
    expect(usage[2]!.stderr).toContain("Unknown option '--bogus'");
    const help = await runCli(['deploy', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: norn deploy <app>/);
  }, 30_000);

  it("a run that does not exist is exit 3 with the api's message", async () => {
    const r = await runCli(['logs', '00000000-0000-4000-8000-000000000000'], cliEnv);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('norn: run 00000000-0000-4000-8000-000000000000 not found\n');
  }, 30_000);
});

describe('reconnecting', () => {
  it('the api process dies mid-deploy and comes back: the CLI reconnects and prints every step exactly once', async () => {
    await registerApp(system, 'cli-drop');
    const first = spawnNorn('api', { ...env, LOG_LEVEL: 'info', PORT: '0' });
    await first.waitForLog('api listening');
    const url = /"url":"(http:\/\/[^"]+)"/.exec(first.output())![1]!;
    const port = new URL(url).port;
    const cli = startCli(['deploy', 'cli-drop', '--ref', 'sleep-2500'], {
      NORN_API_URL: url,
      NORN_API_TOKEN: TOKEN,
    });
    await cli.waitForOutput(/\[2\/9\] s2 +running/);
    first.kill('SIGKILL');
    await first.exited;
    await waitFor(async () => cli.stderr().includes('reconnecting'), 'the CLI to notice the drop');
    await new Promise((r) => setTimeout(r, 500));
    const second = spawnNorn('api', { ...env, LOG_LEVEL: 'info', PORT: port });
    await second.waitForLog('api listening');

    expect(await cli.exited, cli.stderr()).toBe(0);
    expect(cli.stderr()).toMatch(/connection to the api lost \(.+\); reconnecting \(attempt 1\)/);
    expectNineCompleteSteps(cli.stdout());
    expect(cli.stdout().trim().split('\n').at(-1)).toMatch(/^deployed cli-drop test:9 in \d/);
  }, 60_000);

  it('logs --follow streams a running deploy to its end', async () => {
    await registerApp(system, 'cli-follow');
    const started = await runCli(
      ['deploy', 'cli-follow', '--ref', 'sleep-1500', '--no-wait'],
      cliEnv,
    );
    const id = deploymentIdIn(started.stdout)!;
    const r = await runCli(['logs', id, '--follow'], cliEnv);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => / ✓ \[\d\/9\] s\d +complete/.test(l))).toHaveLength(9);
    expect(lines.at(-1)).toMatch(/^\d\d:\d\d:\d\d ✓ deploy completed \(test:9\)$/);
  }, 60_000);
});

describe('norn snapshots (real pg_dump / pg_restore)', () => {
  const snapshotDeploy: PipelineDefinition<DeployServices> = {
    name: 'deploy',
    version: '1',
    steps: [snapshot],
  };
  let sdb: TestDatabase;
  let h: Awaited<ReturnType<typeof startSystem>>;
  let senv: Record<string, string>;
  const appDb = appDbName();

  beforeAll(async () => {
    sdb = await createTestDatabase();
    h = await startSystem(sdb.url, [snapshotDeploy, restorePipeline], {
      NORN_API_TOKEN: TOKEN,
      NORN_DEPLOY_PIPELINE: 'deploy',
    });
    senv = { NORN_API_URL: (await h.system.startApi(0)).url, NORN_API_TOKEN: TOKEN };
    await createDatabase(appDb);
  });
  afterAll(async () => {
    await h?.close();
    await dropDatabase(appDb);
    await sdb?.drop();
  });

  it('lists snapshots as a table (and JSON), restores one following the restore run, exit 0', async () => {
    await sql(
      appDbUrl(appDb),
      "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one');",
    );
    await registerSpec(h.system, {
      name: 'cli-snap',
      infrastructure: { postgres: { database: appDb } },
    });
    expect((await runCli(['snapshots', 'cli-snap'], senv)).stdout).toBe(
      'no snapshots of cli-snap\n',
    );
    const deployed = await runCli(['deploy', 'cli-snap'], senv);
    expect(deployed.code, deployed.stderr).toBe(0);
    const run = (await h.system.store.listRuns('cli-snap', 1))[0]!;
    const snap = (await h.system.store.outputs(run.id)).snapshot as SnapshotOutput;

    const listed = await runCli(['snapshots', 'cli-snap'], senv);
    expect(listed.code, listed.stderr).toBe(0);
    const [header, row, ...rest] = listed.stdout.trim().split('\n');
    expect(header).toMatch(/^TS +DATABASE +SIZE +TAKEN AT$/);
    expect(row).toMatch(
      new RegExp(
        `^${snap.ts} +${appDb} +\\d+(\\.\\d)? (B|KiB|MiB) +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ \\((just now|\\d+s ago)\\)$`,
      ),
    );
    expect(rest).toEqual([]);
    const json = JSON.parse((await runCli(['snapshots', 'cli-snap', '--json'], senv)).stdout);
    expect(json.snapshots).toEqual([
      expect.objectContaining({ ts: snap.ts, database: appDb, sizeBytes: snap.sizeBytes }),
    ]);

    await sql(
      appDbUrl(appDb),
      "UPDATE items SET name = 'changed'; INSERT INTO items VALUES (2, 'two');",
    );
    const restored = await runCli(['snapshots', 'cli-snap', 'restore', snap.ts], senv);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(
      new RegExp(`^restoring cli-snap from snapshot ${snap.ts}: deployment ${UUID}$`, 'm'),
    );
    expect(restored.stdout).toMatch(/^\[1\/1\] restore +running$/m);
    expect(restored.stdout).toMatch(/^\[1\/1\] restore +complete \d+(\.\d)?(ms|s)$/m);
    expect(restored.stdout.trim().split('\n').at(-1)).toMatch(/^restored cli-snap in \d/);
    expect(await sql(appDbUrl(appDb), 'SELECT id, name FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'one' },
    ]);

    const missing = await runCli(['snapshots', 'cli-snap', 'restore', '20000101T000000000Z'], senv);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('snapshot 20000101T000000000Z of app cli-snap not found');
    expect((await runCli(['snapshots', 'cli-snap', 'rewind', snap.ts], senv)).code).toBe(2);
  }, 90_000);
});

describe('rendering', () => {
  it('formats sizes, durations and the snapshot table', () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(12 * 1024 ** 2)]).toEqual([
      '512 B',
      '1.5 KiB',
      '12.0 MiB',
    ]);
    expect([formatDuration(340), formatDuration(12_340), formatDuration(125_000)]).toEqual([
      '340ms',
      '12.3s',
      '2m05s',
    ]);
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(
      snapshotTable(
        [
          {
            ts: '20240501T115900Z',
            database: 'shop',
            takenAt: '2024-05-01T11:59:00Z',
            sizeBytes: 2048,
          },
          {
            ts: '20240430T120000Z',
            database: 'shop',
            takenAt: '2024-04-30T12:00:00Z',
            sizeBytes: 5 * 1024 ** 3,
          },
        ],
        now,
      ).split('\n'),
    ).toEqual([
      'TS                DATABASE  SIZE     TAKEN AT',
      '20240501T115900Z  shop      2.0 KiB  2024-05-01 11:59:00Z (1m ago)',
      '20240430T120000Z  shop      5.0 GiB  2024-04-30 12:00:00Z (1d ago)',
    ]);
  });
});
