/**
 * A verified delivery's way to its subscribers: find them by the repository's URLs, check whose
 * secret signed it, and ask each reached one what the event starts. Records nothing itself.
 */
import type { Db } from '../shared/db.js';
import { isNornError } from '../shared/errors.js';
import type { DeliveryOutcome, RoutedEntry } from '../shared/store/webhooks.js';
import { normalizeRepoUrls } from './repo-url.js';
import {
  SUBSCRIBERS,
  type RepoSubscriber,
  type SubscriberDeps,
  type Subscription,
} from './subscribers.js';
import type { Provider, RepoEvent } from './webhook-events.js';
import { signatureMatches } from './webhook-signature.js';

export interface Target {
  subscriber: RepoSubscriber;
  sub: Subscription;
  /** Whether the delivery's signature was made with this subscriber's secret (or the fallback). */
  verified: boolean;
}

/** Every subscriber (of every kind in SUBSCRIBERS) of the repository the event names. */
export async function findTargets(
  db: Db,
  event: RepoEvent,
): Promise<Array<Omit<Target, 'verified'>>> {
  const urls = normalizeRepoUrls(event.repoUrls);
  if (urls.length === 0) return [];
  const found = await Promise.all(
    SUBSCRIBERS.map(async (subscriber) =>
      (await subscriber.find(db, urls)).map((sub) => ({ subscriber, sub })),
    ),
  );
  return found.flat();
}

export type Verdict =
  | { ok: true; targets: Target[] }
  | { ok: false; reason: 'no-secret' | 'bad-signature'; message: string };

/**
 * Checks the signature against each subscriber's secret (or `fallback` for one without), each
 * distinct secret once. With no subscriber, `fallback` alone decides. No candidate secret
 * verifying is a refusal.
 */
export async function verifyTargets(
  provider: Provider,
  raw: Buffer,
  signature: string,
  found: Array<Omit<Target, 'verified'>>,
  fallback: string | undefined,
): Promise<Verdict> {
  const checked = new Map<string, Promise<boolean>>();
  const matches = (secret: string) => {
    if (!checked.has(secret))
      checked.set(secret, signatureMatches(provider, secret, raw, signature));
    return checked.get(secret)!;
  };
  const targets = await Promise.all(
    found.map(async (t) => {
      const secret = t.sub.webhookSecret ?? fallback;
      return { ...t, verified: secret !== undefined && (await matches(secret)) };
    }),
  );
  const verified =
    found.length === 0
      ? fallback !== undefined && (await matches(fallback))
      : targets.some((t) => t.verified);
  if (verified) return { ok: true, targets };
  if (checked.size === 0)
    return {
      ok: false,
      reason: 'no-secret',
      message:
        'no webhook secret is set for this repository (repo.webhookSecret or NORN_WEBHOOK_SECRET)',
    };
  return { ok: false, reason: 'bad-signature', message: 'the signature does not match' };
}

export interface Routing {
  outcome: DeliveryOutcome;
  reason: string | null;
  routed: RoutedEntry[];
}

/** Asks every verified target what the event starts; a target's failure is its entry's reason. */
export async function routeEvent(
  deps: SubscriberDeps,
  event: RepoEvent,
  delivery: { id: string; provider: string },
  targets: Target[],
): Promise<Routing> {
  const routed = await Promise.all(
    targets.map(async ({ subscriber, sub, verified }): Promise<RoutedEntry & { failed?: true }> => {
      const entry = { kind: subscriber.kind, id: sub.id, verified };
      if (!verified)
        return { ...entry, skipped: "the delivery was not signed with this subscriber's secret" };
      try {
        return { ...entry, ...(await subscriber.handle(deps, sub, event, delivery)) };
      } catch (err) {
        if (!isNornError(err))
          deps.log.error({ err, delivery, target: entry }, 'webhook routing failed');
        const why = isNornError(err)
          ? `${err.code}: ${err.message}`
          : 'internal error (see the api log)';
        return { ...entry, skipped: `could not start: ${why}`, failed: true };
      }
    }),
  );
  const started = routed.some((r) => r.started);
  const failed = routed.some((r) => r.failed);
  const entries = routed.map(({ failed: _f, ...r }) => r);
  const reason =
    routed.length === 0
      ? 'no app or stack is registered for this repository'
      : started
        ? null
        : [...new Set(entries.map((r) => r.skipped).filter(Boolean))].join('; ');
  return { outcome: failed ? 'failed' : started ? 'started' : 'ignored', reason, routed: entries };
}
