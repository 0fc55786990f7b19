/**
 * Feedback to each forge with its real client library (octokit, gitbeaker, fetch) against its
 * fake: the plan comment is created once and then edited in place, found by its marker across
 * pages of other comments; commit statuses in the provider's own words; tokens refused, missing
 * or never shown; transient failures retried, within a bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import { createFeedback, planMarker, type FeedbackEnv } from '../../src/gitops/feedback.js';
import type { StackFeedback } from '../../src/shared/spec/stack.js';
import { chatter, type FakeForgeServer, type ForgeData } from '../support/forges/common.js';
import { startFakeGitea } from '../support/forges/gitea.js';
import { startFakeGitHub } from '../support/forges/github.js';
import { startFakeGitLab } from '../support/forges/gitlab.js';

interface Fake extends FakeForgeServer {
  token: string;
  data: ForgeData;
  seed?: (n: number, bodies: readonly string[]) => void;
}

interface Provider {
  name: StackFeedback['provider'];
  tokenEnv: string;
  start: (token: string) => Promise<Fake>;
  feedback: (url: string) => Omit<StackFeedback, 'provider' | 'tokenEnv'>;
  /** The provider's words for failure and error. */
  failed: { failure: string; error: string };
  /** The query parameter that pages a comment listing. */
  pageParam: string;
}

const PROVIDERS: Provider[] = [
  {
    name: 'github',
    tokenEnv: 'NORN_GITHUB_TOKEN',
    start: (token) => startFakeGitHub({ token, repo: 'acme/infra' }),
    feedback: (url) => ({ repo: 'acme/infra', apiUrl: url }),
    failed: { failure: 'failure', error: 'error' },
    pageParam: 'page',
  },
  {
    name: 'gitlab',
    tokenEnv: 'NORN_GITLAB_TOKEN',
    start: (token) => startFakeGitLab({ token, projectId: 4242, path: 'acme/infra' }),
    feedback: (url) => ({ repo: 'acme/infra', apiUrl: url }),
    failed: { failure: 'failed', error: 'failed' },
    pageParam: 'page',
  },
  {
    name: 'gitea',
    tokenEnv: 'NORN_GITEA_TOKEN',
    start: (token) => startFakeGitea({ token, repo: 'acme/infra' }),
    feedback: (url) => ({ repo: 'acme/infra', apiUrl: url }),
    failed: { failure: 'failure', error: 'error' },
    pageParam: 'page',
  },
];

const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const FAST = { retries: 2, minTimeoutMs: 5 };

describe.each(PROVIDERS)('feedback to $name', (p) => {
  const token = `tok-${p.name}-4f8a1c9e2b7d`;
  const env: FeedbackEnv = { [p.tokenEnv]: token };
  let fake: Fake;
  let spec: StackFeedback;
  const client = (e: FeedbackEnv = env) => createFeedback(spec, e, FAST);
  const seed = (n: number, bodies: readonly string[]) =>
    fake.seed ? fake.seed(n, bodies) : fake.data.seed(n, bodies);

  beforeAll(async () => {
    fake = await p.start(token);
    spec = { provider: p.name, tokenEnv: p.tokenEnv, ...p.feedback(fake.url) };
  });
  afterAll(() => fake?.close());

  it('creates the plan comment once, then edits it in place, found across pages', async () => {
    const marker = planMarker('platform');
    // 130 comments: more than one page for every provider, and another stack's plan comment.
    seed(7, [...chatter(64), `${planMarker('other')}\nother stack's plan`, ...chatter(65)]);
    const before = fake.data.comments(7).map((c) => ({ ...c }));

    const first = await client().upsertComment({ pullRequest: 7, marker, body: 'Plan: 1 to add' });
    expect(first.created).toBe(true);
    const listings = fake.requests.filter((r) => r.method === 'GET');
    expect(listings.some((r) => r.query.get(p.pageParam) === '2')).toBe(true);

    const second = await client().upsertComment({
      pullRequest: 7,
      marker,
      body: `${marker}\nPlan: 2 to add, 1 to change`,
    });
    expect(second).toEqual({ id: first.id, created: false });

    const after = fake.data.comments(7);
    const mine = after.filter((c) => c.body.includes(marker));
    expect(mine).toEqual([
      expect.objectContaining({ id: first.id, body: `${marker}\nPlan: 2 to add, 1 to change` }),
    ]);
    expect(after).toHaveLength(before.length + 1);
    expect(after.filter((c) => c.id !== first.id)).toEqual(before);
  });

  it('marks a new comment with the marker when the body lacks it', async () => {
    seed(8, chatter(3));
    const marker = planMarker('net');
    const { id } = await client().upsertComment({ pullRequest: 8, marker, body: 'No changes.' });
    expect(fake.data.find(id)?.body).toBe(`${marker}\nNo changes.`);
  });

  it('sets statuses pending, then success or failure, in the provider’s words', async () => {
    const forge = client();
    await forge.setStatus({
      sha: SHA,
      state: 'pending',
      context: 'norn/plan/platform',
      description: 'planning',
      targetUrl: 'https://norn.example/api/plans/1',
    });
    await forge.setStatus({
      sha: SHA,
      state: 'success',
      context: 'norn/plan/platform',
      description: 'Plan: 1 to add',
    });
    await forge.setStatus({
      sha: SHA,
      state: 'failure',
      context: 'norn/apply/platform',
      description: 'x'.repeat(300),
    });
    await forge.setStatus({
      sha: SHA,
      state: 'error',
      context: 'norn/drift/platform',
      description: 'tofu crashed',
    });
    expect(fake.data.statuses.map((s) => [s.context, s.state])).toEqual([
      ['norn/plan/platform', 'pending'],
      ['norn/plan/platform', 'success'],
      ['norn/apply/platform', p.failed.failure],
      ['norn/drift/platform', p.failed.error],
    ]);
    expect(fake.data.statuses[0]).toMatchObject({
      targetUrl: 'https://norn.example/api/plans/1',
      sha: SHA,
    });
    expect(fake.data.statuses[2]!.description!.length).toBeLessThanOrEqual(140);
  });

  it('refuses, naming the variable, when the token is not set', () => {
    const err = (() => {
      try {
        createFeedback(spec, {}, FAST);
      } catch (e) {
        return e;
      }
    })();
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toContain(p.tokenEnv);
  });

  it('says a wrong token was refused, without showing either token', async () => {
    const wrong = `wrong-${token}-xyz`;
    const err = await client({ [p.tokenEnv]: wrong })
      .upsertComment({ pullRequest: 7, marker: planMarker('platform'), body: 'x' })
      .catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    const shown = `${(err as Error).message} ${JSON.stringify((err as { details?: unknown }).details)}`;
    expect(shown).toContain(p.tokenEnv);
    expect(shown).not.toContain(wrong);
    expect(shown).not.toContain(token);
    expect((err as Error).cause).toBeUndefined();
  });

  it('answers NOT_FOUND for a pull request the forge does not have', async () => {
    const err = await client()
      .upsertComment({ pullRequest: 999, marker: planMarker('platform'), body: 'x' })
      .catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('NOT_FOUND');
  });

  it('retries transient 5xx answers, a bounded number of times', async () => {
    fake.failNext(2, 503);
    await client().setStatus({
      sha: SHA,
      state: 'success',
      context: 'norn/retry',
      description: 'ok',
    });
    expect(fake.data.statuses.at(-1)).toMatchObject({ context: 'norn/retry', state: 'success' });

    const before = fake.requests.length;
    fake.failNext(50, 500);
    const err = await client()
      .setStatus({ sha: SHA, state: 'success', context: 'norn/retry', description: 'ok' })
      .catch((e: unknown) => e);
    fake.failNext(0);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect(isNornError(err) && err.retryable).toBe(true);
    expect(fake.requests.length - before).toBe(FAST.retries + 1);
    expect((err as Error).message).not.toContain(token);
  });
});
