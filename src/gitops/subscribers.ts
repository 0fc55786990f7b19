/**
 * Who a webhook delivery is for: subscribers of a repository (apps today; stacks plug in by adding
 * an entry to SUBSCRIBERS), each finding itself by the repository's normalized URL and deciding
 * what an event starts for it. The router (src/gitops/router.ts) only iterates this registry.
 */
import type { DeployDeps } from '../api/deploy-request.js';
import { requestDeploy } from '../api/deploy-request.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import { AppStore } from '../shared/store/apps.js';
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

/**
 * An app follows `repo.branch`, or when it names none the repository's default branch as the
 * payload gives it; a push there deploys the pushed commit when `repo.autoDeploy` is on.
 */
export const appSubscriber: RepoSubscriber = {
  kind: 'app',
  async find(db, normalizedUrls) {
    const wanted = new Set(normalizedUrls);
    const targets = await new AppStore(db).webhookTargets();
    return targets
      .filter((t) => wanted.has(normalizeRepoUrl(t.repoUrl) ?? ''))
      .map((t) => ({
        id: t.id,
        repoUrl: t.repoUrl,
        ...(t.branch ? { branch: t.branch } : {}),
        ...(t.webhookSecret ? { webhookSecret: t.webhookSecret } : {}),
      }));
  },
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
): string | undefined {
  if (push.tag) return `a push of tag ${push.tag} deploys nothing (apps follow a branch)`;
  if (!push.branch) return `a push of ${push.ref} deploys nothing (not a branch)`;
  if (push.deleted) return `branch ${push.branch} was deleted`;
  if (!follows)
    return 'the app names no repo.branch and the delivery names no default branch to follow';
  if (push.branch !== follows)
    return `push to ${push.branch}; the app follows ${follows} (${source})`;
  return undefined;
}

/** Every kind of subscriber the router asks, in order. */
export const SUBSCRIBERS: RepoSubscriber[] = [appSubscriber];
