/**
 * POST /webhooks/{github,gitlab,gitea} on the real api (PostgreSQL, Redis, a worker), with the
 * forges' published payloads signed as each forge signs: verification per subscriber secret,
 * refusals counted, deliveries recorded once, routing by any of a repository's URLs, auto-deploy.
 */
import { describe, expect, it } from 'vitest';
import type { Provider } from '../../src/gitops/webhook-events.js';
import { useApiSystem } from '../support/norn.js';
import { delivery, fixture, fixtureText, type Delivery } from '../support/webhooks.js';

const TOKEN = 'test-token-0123456789abcdef';
const FALLBACK = 'fallback-secret-0123456789';
const GH_SECRET = 'gh-clone-secret-0123456789';
const GL_SECRET = 'gitlab-token-0123456789abcd';
const ctx = useApiSystem({
  NORN_API_TOKEN: TOKEN,
  NORN_WEBHOOK_SECRET: FALLBACK,
  NORN_MAX_BODY_BYTES: String(64 * 1024),
});

const auth = { authorization: `Bearer ${TOKEN}` };
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read what they expect
type Answer = { status: number; body: any };
const api = async (method: string, path: string, body?: unknown): Promise<Answer> => {
  const res = await ctx.app.request(path, {
    method,
    headers: { ...auth, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

const send = async (provider: Provider, d: Delivery, extra: Record<string, string> = {}) => {
  const res = await ctx.app.request(`/webhooks/${provider}`, {
    method: 'POST',
    headers: { ...d.headers, ...extra },
    body: d.body,
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read what they expect
  return { status: res.status, body: (await res.json()) as any };
};

/** A fixture delivered as the forge sends it, signed with `secret`. */
const deliver = (provider: Provider, name: string, event: string, secret: string | undefined) =>
  send(provider, delivery(provider, event, fixtureText(provider, name), secret));

/** A fixture changed by `edit`, delivered signed with `secret`. */
const deliverEdited = (
  provider: Provider,
  name: string,
  event: string,
  secret: string,
  edit: (p: Record<string, unknown>) => void,
) => {
  const payload = fixture(provider, name);
  edit(payload);
  return send(provider, delivery(provider, event, JSON.stringify(payload), secret));
};

let port = 8100; // apps on one host need ports of their own
const register = async (name: string, repo: Record<string, unknown>) => {
  const res = await api('POST', '/api/apps', { name, repo, processes: { web: { port: ++port } } });
  expect(res.status).toBe(201);
  return res.body;
};

type Entry = { id: string; kind: string; verified: boolean; started?: string; skipped?: string };
const entry = (routed: Entry[], id: string) => routed.find((r) => r.id === id);
const runCount = async (app: string) => (await ctx.system.store.listRuns(app, 200)).length;
const deliveriesCount = async () =>
  (await api('GET', '/api/webhooks/deliveries?limit=500')).body.deliveries.length;
const refusals = async () => {
  const list = (await api('GET', '/api/webhooks/refusals')).body.refusals as Array<{
    provider: string;
    reason: string;
    count: number;
  }>;
  return Object.fromEntries(list.map((r) => [`${r.provider}:${r.reason}`, r.count]));
};

const GH_MASTER_SHA = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const GH_CHANGES_SHA = 'ec26c3e57ca3a959ca5aad62de7213c562f8c821';

describe('webhooks', () => {
  it('registers subscribers by clone, ssh and web URL; the secret is write-only', async () => {
    const created = await register('gh-clone', {
      url: 'https://github.com/Codertocat/Hello-World.git',
      autoDeploy: true,
      webhookSecret: GH_SECRET, // no branch: the repository's default (master in GitHub's example)
    });
    await register('gh-ssh', {
      url: 'git@github.com:Codertocat/Hello-World.git',
      branch: 'changes',
      autoDeploy: true, // no secret of its own: NORN_WEBHOOK_SECRET
    });
    await register('gh-web', {
      url: 'https://github.com/Codertocat/Hello-World',
      branch: 'master',
    });
    await register('gitea-app', {
      url: 'http://localhost:3000/gitea/webhooks.git',
      autoDeploy: true,
    });
    await register('gl-app', {
      url: 'git@example.com:mike/diaspora.git',
      autoDeploy: true,
      webhookSecret: GL_SECRET,
    });
    expect(JSON.stringify(created)).not.toContain(GH_SECRET);
    const got = await api('GET', '/api/apps/gh-clone');
    expect(got.status).toBe(200);
    expect(got.body.app.spec.repo).toEqual({
      url: 'https://github.com/Codertocat/Hello-World.git',
      autoDeploy: true,
    });
    expect(JSON.stringify(got.body)).not.toContain(GH_SECRET);
    expect(JSON.stringify((await api('GET', '/api/apps')).body)).not.toContain(GH_SECRET);
    const { rows } = await ctx.tdb.db.query<{ stored: string; secret: string }>(
      `SELECT spec::text || source AS stored, webhook_secret AS secret FROM apps WHERE id = 'gh-clone'`,
    );
    expect(rows[0]!.stored).not.toContain(GH_SECRET);
    expect(rows[0]!.secret).toBe(GH_SECRET);
    // Registered again without it (as read back from the api): the app keeps its secret.
    const reRegistered = await api('POST', '/api/apps', {
      name: 'gh-clone',
      repo: got.body.app.spec.repo,
      processes: got.body.app.spec.processes,
    });
    expect(reRegistered.status).toBe(200);
    const again = await ctx.tdb.db.query(
      `SELECT webhook_secret AS s FROM apps WHERE id = 'gh-clone'`,
    );
    expect(again.rows[0]!.s).toBe(GH_SECRET);
  });

  it('auto-deploys a push to the default branch to the app whose own secret signed it', async () => {
    const before = await runCount('gh-clone');
    const res = await deliver('github', 'push.default-branch', 'push', GH_SECRET);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'accepted', outcome: 'started' });
    const clone = entry(res.body.routed, 'gh-clone')!;
    expect(clone).toMatchObject({ kind: 'app', verified: true, started: expect.any(String) });
    const run = await ctx.system.store.getRun(clone.started!);
    expect(run).toMatchObject({
      appId: 'gh-clone',
      pipeline: 'chain',
      params: { ref: GH_MASTER_SHA },
      requestedBy: `webhook:github:${res.body.deliveryId}`,
    });
    expect(await runCount('gh-clone')).toBe(before + 1);
    // The other subscribers' secrets (the fallback) did not sign it: they are not reached.
    expect(entry(res.body.routed, 'gh-ssh')).toMatchObject({ verified: false });
    expect(entry(res.body.routed, 'gh-web')).toMatchObject({ verified: false });
    expect(await runCount('gh-ssh')).toBe(0);
  });

  it('routes a fallback-signed push by ssh and web URL, saying for each app why', async () => {
    const res = await deliver('github', 'push.branch', 'push', FALLBACK);
    expect(res.status).toBe(202);
    const ssh = entry(res.body.routed, 'gh-ssh')!;
    expect(ssh).toMatchObject({ verified: true, started: expect.any(String) });
    expect((await ctx.system.store.getRun(ssh.started!))?.params).toEqual({ ref: GH_CHANGES_SHA });
    expect(entry(res.body.routed, 'gh-web')).toEqual({
      kind: 'app',
      id: 'gh-web',
      verified: true,
      skipped: 'push to changes; the app follows master (repo.branch)',
    });
    expect(entry(res.body.routed, 'gh-clone')).toMatchObject({ verified: false });

    const master = await deliver('github', 'push.default-branch', 'push', FALLBACK);
    expect(master.body.outcome).toBe('ignored');
    expect(entry(master.body.routed, 'gh-web')?.skipped).toBe(
      'push to master, but repo.autoDeploy is off',
    );
    expect(entry(master.body.routed, 'gh-ssh')?.skipped).toBe(
      'push to master; the app follows changes (repo.branch)',
    );
  });

  it('follows the default branch the payload names (Gitea: main), not an assumed one', async () => {
    const develop = await deliver('gitea', 'push.branch', 'push', FALLBACK);
    expect(develop.status).toBe(202);
    expect(develop.body.outcome).toBe('ignored');
    expect(entry(develop.body.routed, 'gitea-app')?.skipped).toBe(
      "push to develop; the app follows main (the repository's default branch)",
    );
    const main = await deliver('gitea', 'push.default-branch', 'push', FALLBACK);
    const started = entry(main.body.routed, 'gitea-app')?.started;
    expect(started).toEqual(expect.any(String));
    expect(await ctx.system.store.getRun(started!)).toMatchObject({
      params: { ref: 'bffeb74224043ba2feb48d137756c8a9331c449a' },
      requestedBy: `webhook:gitea:${main.body.deliveryId}`,
    });
  });

  it('accepts GitLab deliveries by their token; a repository nobody follows starts nothing', async () => {
    const push = await deliver('gitlab', 'push', 'Push Hook', GL_SECRET);
    expect(push.status).toBe(202);
    const started = entry(push.body.routed, 'gl-app')?.started;
    expect((await ctx.system.store.getRun(started!))?.params).toEqual({
      ref: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
    });
    expect((await deliver('gitlab', 'push', 'Push Hook', FALLBACK)).status).toBe(401);
    const mr = await deliver('gitlab', 'merge_request.open', 'Merge Request Hook', FALLBACK);
    expect(mr.status).toBe(202);
    expect(mr.body).toMatchObject({
      outcome: 'ignored',
      reason: 'no app or stack is registered for this repository',
      routed: [],
    });
    const ping = await deliver('github', 'ping', 'ping', FALLBACK);
    expect(ping.body).toMatchObject({ status: 'accepted', outcome: 'ignored' });
  });

  it('starts nothing for a tag push or a branch deletion, and says why', async () => {
    const before = await runCount('gh-ssh');
    const tag = await deliverEdited('github', 'push.branch', 'push', FALLBACK, (p) => {
      p.ref = 'refs/tags/v1.0';
    });
    expect(entry(tag.body.routed, 'gh-ssh')?.skipped).toBe(
      'a push of tag v1.0 deploys nothing (apps follow a branch)',
    );
    const deleted = await deliverEdited('github', 'push.branch', 'push', FALLBACK, (p) => {
      p.deleted = true;
      p.after = '0'.repeat(40);
    });
    expect(entry(deleted.body.routed, 'gh-ssh')?.skipped).toBe('branch changes was deleted');
    const pr = await deliver('github', 'pull_request.opened', 'pull_request', FALLBACK);
    expect(entry(pr.body.routed, 'gh-ssh')?.skipped).toBe('a pull request event deploys nothing');
    for (const res of [tag, deleted, pr]) expect(res.body.outcome).toBe('ignored');
    expect(await runCount('gh-ssh')).toBe(before);
  });

  it('refuses and counts unsigned, forged, oversized and malformed deliveries, starting nothing', async () => {
    const counts = await refusals();
    const runs = await runCount('gh-clone');
    const recorded = await deliveriesCount();
    const body = fixtureText('github', 'push.default-branch');
    const unsigned = await send('github', delivery('github', 'push', body, undefined));
    expect(unsigned.status).toBe(401);
    const forged = await send('github', delivery('github', 'push', body, 'not-the-secret-at-all'));
    expect(forged.status).toBe(401);
    const tampered = delivery('github', 'push', body, GH_SECRET);
    expect(
      (await send('github', { ...tampered, body: body.replace(GH_MASTER_SHA, 'f'.repeat(40)) }))
        .status,
    ).toBe(401);
    const gitea = await send(
      'gitea',
      delivery(
        'gitea',
        'push',
        fixtureText('gitea', 'push.default-branch'),
        'wrong-secret-0123456789',
      ),
    );
    expect(gitea.status).toBe(401);
    const big = JSON.stringify({
      ...fixture('github', 'push.default-branch'),
      pad: 'x'.repeat(70_000),
    });
    const declared = delivery('github', 'push', big, GH_SECRET);
    expect(
      (await send('github', declared, { 'content-length': String(Buffer.byteLength(big)) })).status,
    ).toBe(413);
    const notJson = await send('github', delivery('github', 'push', '{"ref": ', GH_SECRET));
    expect(notJson.status).toBe(400);
    const nul = await send('github', delivery('github', 'push', '{"ref":"a\\u0000b"}', GH_SECRET));
    expect(nul.status).toBe(400);
    const noId = delivery('github', 'push', body, GH_SECRET);
    delete noId.headers['x-github-delivery'];
    expect((await send('github', noId)).status).toBe(400);

    const now = await refusals();
    const grew = (key: string) => (now[key] ?? 0) - (counts[key] ?? 0);
    expect(grew('github:unsigned')).toBe(1);
    expect(grew('github:bad-signature')).toBe(2);
    expect(grew('gitea:bad-signature')).toBe(1);
    expect(grew('github:too-large')).toBe(1);
    expect(grew('github:malformed')).toBe(3);
    expect(await runCount('gh-clone')).toBe(runs);
    expect(await deliveriesCount()).toBe(recorded);
  });

  it('answers a repeated delivery id "duplicate" and starts nothing', async () => {
    const d = delivery('github', 'push', fixtureText('github', 'push.default-branch'), GH_SECRET);
    expect((await send('github', d)).body.outcome).toBe('started');
    const runs = await runCount('gh-clone');
    const again = await send('github', d);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'duplicate', deliveryId: d.deliveryId });
    expect(await runCount('gh-clone')).toBe(runs);
  });

  it('lists deliveries newest first, shows one with its payload, and replays it', async () => {
    const res = await deliver('github', 'push.default-branch', 'push', GH_SECRET);
    const first = entry(res.body.routed, 'gh-clone')!.started;
    const list = await api('GET', '/api/webhooks/deliveries');
    expect(list.body.deliveries[0]).toMatchObject({
      id: res.body.id,
      provider: 'github',
      event: 'push',
      deliveryId: res.body.deliveryId,
      repository: 'github.com/Codertocat/Hello-World',
      outcome: 'started',
    });
    expect(list.body.deliveries[0].payload).toBeUndefined();
    const one = await api('GET', `/api/webhooks/deliveries/${res.body.id}`);
    expect(one.body.delivery.payload).toEqual(fixture('github', 'push.default-branch'));
    expect(
      (await api('GET', '/api/webhooks/deliveries/00000000-0000-0000-0000-000000000000')).status,
    ).toBe(404);

    const replay = await api('POST', `/api/webhooks/deliveries/${res.body.id}/replay`);
    expect(replay.status).toBe(202);
    const again = entry(replay.body.delivery.routed, 'gh-clone')!;
    expect(again.started).toEqual(expect.any(String));
    expect(again.started).not.toBe(first);
    expect(await ctx.system.store.getRun(again.started!)).toMatchObject({
      params: { ref: GH_MASTER_SHA },
      requestedBy: `webhook:github:${res.body.deliveryId}`,
    });
    // Subscribers the original signature did not reach stay out of the replay too.
    expect(entry(replay.body.delivery.routed, 'gh-ssh')).toMatchObject({ verified: false });
    const stored = await api('GET', `/api/webhooks/deliveries/${res.body.id}`);
    expect(entry(stored.body.delivery.routed, 'gh-clone')?.started).toBe(again.started);
  });

  it('needs the api token for /api/webhooks, not for /webhooks', async () => {
    expect((await ctx.app.request('/api/webhooks/deliveries')).status).toBe(401);
    expect((await ctx.app.request('/api/webhooks/refusals')).status).toBe(401);
    expect((await deliver('github', 'ping', 'ping', FALLBACK)).status).toBe(202);
    expect(
      (await ctx.app.request('/webhooks/bitbucket', { method: 'POST', body: '{}' })).status,
    ).toBe(404);
  });
});
