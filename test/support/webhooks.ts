/** The forges' published webhook payloads (test/fixtures/webhooks) and deliveries signed as they sign. */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Provider } from '../../src/gitops/webhook-events.js';
import { PROVIDER_HEADERS, signFor } from '../../src/gitops/webhook-signature.js';

const DIR = new URL('../fixtures/webhooks/', import.meta.url);

/** The fixture's text as the forge sent it (the bytes a signature covers). */
export const fixtureText = (provider: Provider, name: string) =>
  readFileSync(new URL(`${provider}/${name}.json`, DIR), 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read what they expect
export const fixture = (provider: Provider, name: string): any =>
  JSON.parse(fixtureText(provider, name));

/** The event header each fixture was delivered with. */
export function eventHeader(provider: Provider, name: string): string {
  const kind = name.split('.')[0]!;
  if (provider === 'gitlab') return kind === 'push' ? 'Push Hook' : 'Merge Request Hook';
  return kind;
}

export interface Delivery {
  body: string;
  headers: Record<string, string>;
  deliveryId: string;
}

/**
 * A delivery of `body` signed with `secret` (undefined: unsigned) the way `provider` signs, with
 * its event and delivery headers.
 */
export function delivery(
  provider: Provider,
  event: string,
  body: string,
  secret: string | undefined,
  o: { deliveryId?: string } = {},
): Delivery {
  const h = PROVIDER_HEADERS[provider];
  const deliveryId = o.deliveryId ?? randomUUID();
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    [h.event]: event,
    [h.delivery[0]!]: deliveryId,
  };
  if (secret !== undefined) headers[h.signature] = signFor(provider, secret, body);
  return { body, headers, deliveryId };
}
