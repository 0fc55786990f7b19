/**
 * Who a webhook delivery is for: subscribers of a repository (apps today; stacks plug in by adding
 * an entry to SUBSCRIBERS), each finding itself by the repository's normalized URL and deciding
 * what an event starts for it. The router (src/gitops/router.ts) only iterates this registry.
 */
import type { DeployDeps } from '../api/deploy-request.js';
import { requestDeploy } from '../api/deploy-request.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import { AppStore, type WebhookTarget } from '../shared/store/apps.js';
import { StackStore } from '../shared/store/stacks.js';
import { requestRelease, requestReview } from '../api/stack-request.js';
import { normalizeRepoUrl } from './repo-url.js';
import type { RepoEvent } from './webhook-events.js';

/** What a subscriber's handler may use. */
export interface SubscriberDeps extends DeployDeps {
  apps: AppStore;
  log: Logger;
}

export interface Subscription {
  id: string;
  repoUrl: string;
  branch?: string;
  /** The secret the forge signs this subscriber's deliveries with (NORN_WEBHOOK_SECRET if none). */
  webhookSecret?: string;
}

export interface RepoSubscriber {
  kind: 'app' | 'stack';
  /** subscribers of a repository (by normalized URL) */
  find(db: Db, normalizedUrls: string[]): Promise<Subscription[]>;
  /** what the event starts for one subscriber: a run id, or why nothing */
  handle(
    deps: SubscriberDeps,
    sub: Subscription,
    event: RepoEvent,
    delivery: { id: string; provider: string },
  ): Promise<{ started?: string; skipped?: string }>;
}

/** The subscriptions among an app's or stack's webhook targets to a repository (by normalized URL). */
function subscriptionsTo(
  targets: ReadonlyArray<Omit<WebhookTarget, 'autoDeploy'>>,
  normalizedUrls: string[],
): Subscription[] {
  const wanted = new Set(normalizedUrls);
  return targets
    .filter((t) => wanted.has(normalizeRepoUrl(t.repoUrl) ?? ''))
    .map((t) => ({
      id: t.id,
      repoUrl: t.repoUrl,
      ...(t.branch ? { branch: t.branch } : {}),
      ...(t.webhookSecret ? { webhookSecret: t.webhookSecret } : {}),
    }));
}

/**
 * An app follows `repo.branch`, or when it names none the repository's default branch as the
 * payload gives it; a push there deploys the pushed commit when `repo.autoDeploy` is on.
 */
export const appSubscriber: RepoSubscriber = {
  kind: 'app',
  find: async (db, normalizedUrls) =>
    subscriptionsTo(await new AppStore(db).webhookTargets(), normalizedUrls),
  async handle(deps, sub, event, delivery) {
    const push = event.push;
    if (event.kind !== 'push' || !push)
      return {
        skipped: `a ${event.kind === 'other' ? event.event : 'pull request'} event deploys nothing`,
      };
    const follows = sub.branch ?? event.defaultBranch;
    const source = sub.branch ? 'repo.branch' : "the repository's default branch";
    const why = pushSkipReason(push, follows, source);
    if (why) return { skipped: why };
    const app = await deps.apps.get(sub.id);
    if (!app) return { skipped: 'the app was deleted' };
    const repo = app.spec.repo as { autoDeploy?: boolean } | undefined;
    if (repo?.autoDeploy !== true)
      return { skipped: `push to ${push.branch}, but repo.autoDeploy is off` };
    const accepted = await requestDeploy(deps, app, {
      ref: push.after,
      requestedBy: `webhook:${delivery.provider}:${delivery.id}`,
    });
    return { started: accepted.runId };
  },
};

/** Why a push does not deploy an app following `follows`, or undefined when it does. */
function pushSkipReason(
  push: NonNullable<RepoEvent['push']>,
  follows: string | undefined,
  source: string,
  who: 'the app' | 'the stack' = 'the app',
): string | undefined {
  const does = who === 'the app' ? 'deploys' : 'releases';
  if (push.tag)
    return `a push of tag ${push.tag} ${does} nothing (${who === 'the app' ? 'apps' : 'stacks'} follow a branch)`;
  if (!push.branch) return `a push of ${push.ref} ${does} nothing (not a branch)`;
  if (push.deleted) return `branch ${push.branch} was deleted`;
  if (!follows)
    return `${who} names no repo.branch and the delivery names no default branch to follow`;
  if (push.branch !== follows)
    return `push to ${push.branch}; ${who} follows ${follows} (${source})`;
  return undefined;
}

/**
 * A stack follows `repo.branch`, or the repository's default branch: a pull request into that
 * branch opened or pushed to is reviewed (a newer push supersedes the running review of it), and a
 * push to the branch itself is released.
 */
export const stackSubscriber: RepoSubscriber = {
  kind: 'stack',
  find: async (db, normalizedUrls) =>
    subscriptionsTo(await new StackStore(db).webhookTargets(), normalizedUrls),
  async handle(deps, sub, event, delivery) {
    const follows = sub.branch ?? event.defaultBranch;
    const source = sub.branch ? 'repo.branch' : "the repository's default branch";
    const requestedBy = `webhook:${delivery.provider}:${delivery.id}`;
    const stack = await new StackStore(deps.db).get(sub.id);
    if (!stack) return { skipped: 'the stack was deleted' };
    if (event.kind === 'pull_request' && event.pullRequest) {
      const pr = event.pullRequest;
      if (pr.action !== 'opened' && pr.action !== 'updated')
        return { skipped: `pull request #${pr.number} ${pr.action}: nothing to plan` };
      if (!follows)
        return {
          skipped: 'the stack names no repo.branch and the delivery names no default branch',
        };
      if (pr.baseRef !== follows)
        return {
          skipped: `pull request #${pr.number} is into ${pr.baseRef}; the stack follows ${follows} (${source})`,
        };
      const accepted = await requestReview(
        deps.runs,
        stack,
        {
          pullRequest: pr.number,
          headSha: pr.headSha,
          baseSha: pr.baseSha ?? null,
          headRef: pr.headRef,
        },
        requestedBy,
      );
      return { started: accepted.runId };
    }
    if (event.kind !== 'push' || !event.push)
      return { skipped: `a ${event.event} event starts nothing for a stack` };
    const why = pushSkipReason(event.push, follows, source, 'the stack');
    if (why) return { skipped: why };
    const accepted = await requestRelease(deps.runs, stack, event.push.after, requestedBy);
    return { started: accepted.runId };
  },
};

/** Every kind of subscriber the router asks, in order. */
export const SUBSCRIBERS: RepoSubscriber[] = [appSubscriber, stackSubscriber];
