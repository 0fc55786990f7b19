/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * fleet: the api serving the built dashboard, a worker running the deploy pipeline on Docker with
 * the example app. Logging in, a deploy's nine steps turning complete live, a failed deploy's
 * error, a queued run's "why waiting" (and the apps view's holder and queue), a cancel from the
 * page, an api restart mid-run that loses and duplicates no step, and a tab frozen mid-run that
 * shows the whole run once it runs again. Screenshots of the apps view and the run panel go to
 * .norn/screenshots (NORN_SCREENSHOTS=docs: docs/).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEPLOY_STEPS } from '../../src/pipelines/deploy/types.js';
import { withDatabase } from '../support/global-setup.js';
import { REPO_ROOT } from '../support/docker/engine.js';
import { freePorts, removeAppContainers } from '../support/deploy-runtime/fixtures.js';
import { startFleet, type Fleet } from '../support/deploy/fleet.js';
import { apiCaller, waitFor } from '../support/norn.js';
import { aStack } from '../support/stacks.js';

const TOKEN = 'dashboard-token-0123456789abcdef';
const CHROMIUM = process.env.NORN_CHROMIUM ?? '/usr/bin/chromium';
const UI = join(REPO_ROOT, 'dist/ui');
// Written where tests keep their files; `NORN_SCREENSHOTS=docs` refreshes the README's.
const SCREENSHOTS = join(REPO_ROOT, process.env.NORN_SCREENSHOTS ?? '.norn/screenshots');
const STEPS = DEPLOY_STEPS;

let fleet: Fleet;
let browser: Browser;
let page: Page;
const apps: string[] = [];
const databases: string[] = [];
const cspViolations: string[] = [];
const call = apiCaller(() => fleet.api, TOKEN);

/** The newest mtime under `dir` (files only). */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) t = Math.max(t, statSync(join(e.parentPath, e.name)).mtimeMs);
  return t;
}

/** Builds the dashboard unless dist/ui is newer than everything under ui/. */
function ensureBuilt() {
  const index = join(UI, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newest(join(REPO_ROOT, 'ui'))) return;
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: REPO_ROOT, stdio: 'pipe' });
}

function exampleSpec(name: string, port: number, minHealthyTime = '1s') {
  const spec = parseYaml(readFileSync(join(REPO_ROOT, 'examples/hello/infraspec.yaml'), 'utf8'));
  spec.name = name;
  spec.repo.url = fleet.repoUrl;
  spec.processes.web.port = port;
  spec.infrastructure.postgres.database = name.replace(/-/g, '_');
  spec.endpoints = [{ url: `${name}.example.test` }];
  spec.deployPolicy.minHealthyTime = minHealthyTime;
  return spec;
}

async function register(name: string, port: number, minHealthyTime?: string) {
  const res = await call('POST', '/api/apps', exampleSpec(name, port, minHealthyTime));
  expect([200, 201]).toContain(res.status);
  if (!apps.includes(name)) apps.push(name);
  databases.push(name.replace(/-/g, '_'));
}

/** The run panel's steps as shown: `name:status`, in order. */
const shownSteps = () =>
  page
    .locator('li.step')
    .evaluateAll((items) =>
      items.map(
        (li) => `${li.getAttribute('data-step')}:${li.querySelector('.badge')?.textContent}`,
      ),
    );

/** Polls the run panel until `done` holds, recording every `step:status` seen on the way. */
async function watchSteps(done: (shown: string[]) => boolean, timeoutMs = 150_000) {
  const seen = new Set<string>();
  let last: string[] = [];
  await waitFor(
    async () => {
      last = await shownSteps();
      for (const s of last) seen.add(s);
      return done(last);
    },
    'the run panel to show the run ended',
    timeoutMs,
    100,
  );
  return { seen, last };
}

const runIdInUrl = () => /\/runs\/([0-9a-f-]{36})$/.exec(page.url())?.[1];

/** Registers `name` again with `minHealthyTime`, deploys main from its page; the run's id. */
async function redeployFromPage(name: string, minHealthyTime: string): Promise<string> {
  const spec = (await call('GET', `/api/apps/${name}`)).body.app.spec;
  await register(name, spec.processes.web.port, minHealthyTime);
  await page.goto(`${fleet.api.url}/apps/${name}`);
  await page.getByLabel('Git ref').fill('main');
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  return runIdInUrl()!;
}

beforeAll(async () => {
  ensureBuilt();
  fleet = await startFleet({
    token: TOKEN,
    name: 'dashboard',
    env: (work) => ({
      NORN_UI_DIR: UI,
      NORN_SNAPSHOT_DIR: join(work, 'snapshots'),
      NORN_APP_DATABASE_URL: withDatabase(inject('databaseUrl'), 'postgres'),
      NORN_CLOUDFLARED_CONFIG: join(work, 'cloudflared.yml'),
      NORN_CLOUDFLARED_RESTART: JSON.stringify(['true']),
      NORN_HEALTH_POLL_MS: '200',
      NORN_WS_HEARTBEAT_MS: '1000',
    }),
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-quic',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) cspViolations.push(msg.text());
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await removeAppContainers(apps);
  for (const db of databases)
    await fleet?.system.db.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
  await fleet?.close();
});

describe('the dashboard in Chromium', () => {
  it('logs in with the token, keeping only an HttpOnly session cookie', async () => {
    await page.goto(fleet.api.url);
    await page.getByLabel('API token').fill('not-the-token-at-all-0000');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expectText(page.getByRole('alert'), /UNAUTHORIZED/);
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('region', { name: 'Apps' }).waitFor();
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'norn_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(session!.value).not.toContain(TOKEN);
    // Neither storage holds the token, nor can a script read the cookie.
    const stored = await page.evaluate(() => ({
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      cookie: document.cookie,
    }));
    expect(stored.local).not.toContain(TOKEN);
    expect(stored.session).not.toContain(TOKEN);
    expect(stored.cookie).not.toContain('norn_session');
  });

  it('deploys the example app from the page and shows its nine steps turn complete live', async () => {
    const [port] = [await freePorts(2)];
    const name = `ui-hello-${port}`;
    await register(name, port!);
    await page.goto(`${fleet.api.url}/apps/${name}`);
    await page.getByLabel('Git ref').fill('main');
    const deploy = page.getByRole('button', { name: 'Deploy', exact: true });
    await deploy.click();
    await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
    const { seen, last } = await watchSteps(
      (s) => s.length === 9 && s.every((x) => /:(complete|skipped|failed|cancelled)$/.test(x)),
    );
    expect(last).toEqual(
      STEPS.map((s) => (s === 'snapshot' ? 'snapshot:skipped' : `${s}:complete`)),
    );
    // Live: the page showed steps running before they completed, without a reload.
    expect([...seen].filter((s) => s.endsWith(':running')).length).toBeGreaterThanOrEqual(3);
    await expectText(page.locator('.run-head .badge'), /succeeded/);
    await expectText(page.getByRole('region', { name: 'Releases' }), /active/);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-run.png'), fullPage: false });

    await page.getByRole('link', { name: 'Apps' }).click();
    const row = page.locator(`tr[data-app="${name}"]`);
    await expectText(row, /deploy\s*succeeded/);
    await expectText(row, /docker/);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-apps.png') });
    expect(cspViolations).toEqual([]);
  });

  it('lists stacks with their review, release and drift status', async () => {
    expect((await call('POST', '/api/stacks', aStack({ name: 'ui-net' }))).status).toBe(201);
    await page.getByRole('link', { name: 'Stacks' }).click();
    const card = page.locator('[data-stack="ui-net"]');
    await expectText(card, /release\s*none.*drift\s*unknown/s);
    await expectText(card, /no drift recorded/);
    await expect(card.getByRole('button', { name: 'Check drift now' }).isEnabled()).resolves.toBe(
      true,
    );
  });

  it("shows a failed deploy's error", async () => {
    const name = apps[0]!;
    await page.goto(`${fleet.api.url}/apps/${name}`);
    await page.getByLabel('Git ref').fill('no-such-branch');
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
    await expectText(page.locator('[data-run-error]'), /clone: .*no-such-branch/, 60_000);
    await expectText(page.locator('li.step[data-step="clone"] .badge'), /failed/);
  });

  it('explains why a queued run waits, and cancels a running deploy from the page', async () => {
    const name = apps[0]!;
    // A deploy that stays in its healthy step for a while holds the app's lease.
    const spec = (await call('GET', `/api/apps/${name}`)).body.app.spec;
    await register(name, spec.processes.web.port, '60s');
    const holder = (await call('POST', `/api/apps/${name}/deploy`, { ref: 'main' })).body;
    const queued = (await call('POST', `/api/apps/${name}/deploy`, { ref: 'main' })).body;
    await page.goto(`${fleet.api.url}/apps/${name}/runs/${queued.runId}`);
    const why = page.getByLabel('Why is this waiting?');
    await expectText(why, new RegExp(`scope app:${name}`));
    await expectText(
      why.locator('[data-holder]'),
      new RegExp(`deploy run ${holder.runId.slice(0, 8)}`),
    );
    await expectText(why.locator('[data-position]'), /position 1 of 1 waiting/);
    // The apps view says the same at a glance: who holds the app, and how many wait.
    await page.getByRole('link', { name: 'Apps' }).click();
    const row = page.locator(`tr[data-app="${name}"]`);
    await expectText(row, new RegExp(`deploy ${holder.runId.slice(0, 8)} on`));
    await expectText(row.locator('[data-queue]'), /^1$/);
    await page.goto(`${fleet.api.url}/apps/${name}/runs/${queued.runId}`);
    await expectText(why.locator('[data-position]'), /position 1 of 1 waiting/);

    // The queued one first (cancel asks first; "Keep it" changes nothing).
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await page.getByRole('button', { name: 'Keep it' }).click();
    expect((await call('GET', `/api/runs/${queued.runId}`)).body.run.status).toBe('queued');

    // The running one, once it is in its healthy step.
    await page.goto(`${fleet.api.url}/apps/${name}/runs/${holder.runId}`);
    await expectText(page.locator('li.step[data-step="healthy"] .badge'), /running/, 120_000);
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Yes, cancel' }).click();
    await expectText(page.locator('.run-head .badge'), /cancelled/, 60_000);
    await expectText(page.locator('li.step[data-step="healthy"] .badge'), /cancelled/);
    // The queued run then holds the lease; cancel it through the api to end the test quickly.
    await call('POST', `/api/runs/${queued.runId}/cancel`);
    await waitFor(
      async () =>
        ['cancelled', 'succeeded', 'failed'].includes(
          (await call('GET', `/api/runs/${queued.runId}`)).body.run.status,
        ),
      'the queued run to end',
      90_000,
    );
  });

  it('survives an api restart mid-run: the banner shows, and no step is lost or shown twice', async () => {
    const runId = await redeployFromPage(apps[0]!, '6s');
    await expectText(
      page.locator('li.step[data-step="submit"] .badge'),
      /running|complete/,
      120_000,
    );

    const port = fleet.api.port;
    await fleet.api.close();
    await expectText(page.getByRole('status'), /offline, reconnecting/, 20_000);
    fleet.api = await fleet.system.startApi(port);
    // While healthy waits out minHealthyTime, its progress line shows the rollout.
    await expectText(page.locator('[data-progress="healthy"]'), /\d+\/\d+ ready/, 120_000);
    const { last } = await watchSteps(
      (s) => s.length === 9 && s.every((x) => /:(complete|skipped|failed|cancelled)$/.test(x)),
    );
    await waitFor(
      async () => (await page.getByRole('status').count()) === 0,
      'the banner to go',
      20_000,
    );
    const server = (await call('GET', `/api/runs/${runId}`)).body;
    expect(server.run.status).toBe('succeeded');
    // Exactly the server's steps, each once, in order.
    expect(last).toEqual(
      server.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`),
    );
    expect(new Set(last.map((s) => s.split(':')[0])).size).toBe(9);
    expect(last.map((s) => s.split(':')[0])).toEqual(STEPS);
    expect(cspViolations).toEqual([]);
  });

  it('a background tab frozen mid-run catches up when it is shown again', async () => {
    const runId = await redeployFromPage(apps[0]!, '2s');
    await expectText(page.locator('li.step[data-step="clone"] .badge'), /running|complete/);

    // As Chromium freezes a tab in the background: no script runs, no timer fires, no event is
    // handled, until the tab is shown again; the run ends meanwhile. Headless Chromium can neither
    // hide nor freeze a tab (Page.setWebLifecycleState changes nothing there: timers go on), so
    // the debugger stops the page's scripts instead, which is what a freeze does to the page.
    // A timer ticking every 50 ms shows the stop is real: it must all but stop meanwhile.
    const ticks = () => page.evaluate(() => (window as unknown as { ticks: number }).ticks);
    await page.evaluate(() => {
      const w = window as unknown as { ticks: number };
      w.ticks = 0;
      setInterval(() => w.ticks++, 50);
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Debugger.enable');
    const frozenAt = { ticks: await ticks(), ms: Date.now() };
    const paused = new Promise((r) => cdp.once('Debugger.paused', r));
    await cdp.send('Debugger.pause');
    await paused;
    await waitFor(
      async () => (await call('GET', `/api/runs/${runId}`)).body.run.status === 'succeeded',
      'the run to end while the tab is frozen',
      120_000,
    );
    await cdp.send('Debugger.resume');
    await cdp.send('Debugger.disable');
    await cdp.detach();
    const frozenFor = (Date.now() - frozenAt.ms) / 50;
    expect(frozenFor).toBeGreaterThan(20); // the run took a while: a freeze worth the name
    expect((await ticks()) - frozenAt.ticks).toBeLessThan(frozenFor / 4);
    // Shown again.
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));

    const { last } = await watchSteps(
      (s) => s.length === 9 && s.every((x) => /:(complete|skipped)$/.test(x)),
      20_000,
    );
    const server = (await call('GET', `/api/runs/${runId}`)).body;
    expect(last).toEqual(
      server.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`),
    );
    await expectText(page.locator('.run-head .badge'), /succeeded/);
  });
});

/** Waits until the locator's text matches (playwright's auto-waiting, with our message). */
async function expectText(
  locator: ReturnType<Page['locator']>,
  pattern: RegExp,
  timeoutMs = 30_000,
) {
  let text = '';
  await waitFor(
    async () => {
      text =
        (await locator
          .first()
          .textContent({ timeout: 1_000 })
          .catch(() => '')) ?? '';
      return pattern.test(text);
    },
    `text matching ${pattern} (last seen: ${JSON.stringify(text.slice(0, 200))})`,
    timeoutMs,
    100,
  );
}
