/**
 * How each forge proves a delivery came from it, checked in constant time:
 * - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (octokit's `verify`);
 * - GitLab: `X-Gitlab-Token: <the secret itself>` (the body is not signed);
 * - Gitea: `X-Gitea-Signature: <hex HMAC-SHA256 of the raw body>`, no prefix.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { verify as verifyGithub } from '@octokit/webhooks-methods';
import type { Provider } from './webhook-events.js';

/** The headers a provider signs with and names its event and delivery by. */
export const PROVIDER_HEADERS: Record<
  Provider,
  { signature: string; event: string; delivery: readonly string[] }
> = {
  github: {
    signature: 'x-hub-signature-256',
    event: 'x-github-event',
    delivery: ['x-github-delivery'],
  },
  // Idempotency-Key stays the same when GitLab retries a delivery; X-Gitlab-Event-UUID names the
  // event. (X-Gitlab-Webhook-UUID names the webhook, the same for all its deliveries: never an id.)
  gitlab: {
    signature: 'x-gitlab-token',
    event: 'x-gitlab-event',
    delivery: ['idempotency-key', 'x-gitlab-event-uuid'],
  },
  gitea: { signature: 'x-gitea-signature', event: 'x-gitea-event', delivery: ['x-gitea-delivery'] },
};

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Constant-time equality of two strings of any length (their SHA-256 digests are compared). */
export function sameSecret(expected: string, presented: string): boolean {
  return timingSafeEqual(digest(expected), digest(presented));
}

/**
 * Whether `signature` (the provider's signature header) proves `raw` was sent by someone holding
 * `secret`. Never throws: a missing or malformed signature is simply false.
 */
export async function signatureMatches(
  provider: Provider,
  secret: string,
  raw: Buffer,
  signature: string | undefined,
): Promise<boolean> {
  if (!signature || !secret) return false;
  if (provider === 'gitlab') return sameSecret(secret, signature);
  if (provider === 'gitea') {
    const expected = createHmac('sha256', secret).update(raw).digest();
    const given = /^[0-9a-f]{64}$/i.test(signature) ? Buffer.from(signature, 'hex') : undefined;
    return given !== undefined && timingSafeEqual(expected, given);
  }
  if (raw.length === 0) return false; // octokit's verify refuses an empty payload by throwing
  // Decoded as UTF-8 as GitHub encodes it; a BOM is kept, so the bytes signed are the bytes read.
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(raw);
  return verifyGithub(secret, text, signature).catch(() => false);
}

/** A GitLab-style token, a GitHub `sha256=` signature or a Gitea hex signature of `raw`. */
export function signFor(provider: Provider, secret: string, raw: string | Buffer): string {
  if (provider === 'gitlab') return secret;
  const hex = createHmac('sha256', secret).update(raw).digest('hex');
  return provider === 'github' ? `sha256=${hex}` : hex;
}
