/**
 * `POST /webhooks/:provider` (github, gitlab, gitea): deliveries from git forges, authenticated by
 * their signatures instead of the api token. A verified delivery is recorded and routed (runs are
 * only enqueued: no git, no network), so the forge gets its answer fast. A refused one (unsigned,
 * wrongly signed, oversized, malformed) is counted and starts nothing.
 *
 * `/api/webhooks/…` (behind the token): deliveries, one delivery, its replay, refusal counts.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { NornError, isNornError, notFound, type ErrorCode } from '../../shared/errors.js';
import { findTargets, routeEvent, verifyTargets, type Target } from '../../gitops/router.js';
import { normalizeRepoUrls } from '../../gitops/repo-url.js';
import { PROVIDERS, toRepoEvent, type Provider } from '../../gitops/webhook-events.js';
import { PROVIDER_HEADERS } from '../../gitops/webhook-signature.js';
import type { ApiDeps } from '../deps.js';
import { limitBody } from '../edge.js';
import * as routes from '../../shared/api/webhooks.js';
import { requireRedis, router } from './util.js';

export type RefusalReason = 'unsigned' | 'no-secret' | 'bad-signature' | 'malformed' | 'too-large';

const refused = (refusal: RefusalReason, code: ErrorCode, message: string) =>
  new NornError(code, message, { details: { refusal } });

const providerOf = (name: string | undefined): Provider | undefined =>
  PROVIDERS.find((p) => p === name);

/** Counts the refusals of the routes below it (the body limit's 413 included), by provider. */
function countRefusals(deps: ApiDeps): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const err = c.error;
    const provider = providerOf(c.req.path.split('/')[2]);
    if (!provider || !isNornError(err)) return;
    const reason =
      err.code === 'PAYLOAD_TOO_LARGE' ? 'too-large' : (err.details?.refusal as string | undefined);
    if (!reason) return;
    await deps.webhooks
      .countRefusal(provider, reason)
      .catch((e: unknown) => deps.log.warn({ err: e, provider, reason }, 'refusal not counted'));
  };
}

/** Mounted at /webhooks, before the api's own body limit and NUL check (it has its own). */
export function webhookReceiver(deps: ApiDeps) {
  return new Hono()
    .use('*', countRefusals(deps))
    .use('*', limitBody(deps.maxBodyBytes))
    .post('/:provider', async (c) => {
      const provider = providerOf(c.req.param('provider'));
      if (!provider) throw notFound(`webhook provider ${c.req.param('provider')}`);
      return receive(deps, c, provider);
    });
}

async function receive(deps: ApiDeps, c: Context, provider: Provider) {
  const headers = PROVIDER_HEADERS[provider];
  const raw = Buffer.from(await c.req.arrayBuffer()); // the bytes signed, before any decoding
  const signature = c.req.header(headers.signature);
  if (!signature)
    throw refused('unsigned', 'UNAUTHORIZED', `the delivery has no ${headers.signature} header`);
  const event = c.req.header(headers.event);
  const deliveryId = headers.delivery.map((h) => c.req.header(h)).find(Boolean);
  if (!event || !deliveryId)
    throw refused(
      'malformed',
      'BAD_REQUEST',
      `the delivery needs the ${headers.event} and ${headers.delivery.join(' or ')} headers`,
    );
  const payload = readPayload(raw);
  const repoEvent = toRepoEvent(provider, event, payload);
  const found = await findTargets(deps.db, repoEvent);
  const verdict = await verifyTargets(provider, raw, signature, found, deps.webhookSecret);
  if (!verdict.ok) throw refused(verdict.reason, 'UNAUTHORIZED', verdict.message);
  // Refused now, unrecorded, while Redis is down: the forge's retry (same id) is then not a duplicate.
  requireRedis(deps.redis);
  const record = await deps.webhooks.insert({
    provider,
    event,
    deliveryId,
    repository: normalizeRepoUrls(repoEvent.repoUrls)[0],
    payload,
  });
  if (!record) return c.json({ status: 'duplicate', provider, deliveryId }, 200);
  const routing = await routeEvent(deps, repoEvent, { id: deliveryId, provider }, verdict.targets);
  await deps.webhooks.settle(record.id, routing);
  deps.log.info({ provider, event, deliveryId, outcome: routing.outcome }, 'webhook delivery');
  return c.json({ status: 'accepted', id: record.id, deliveryId, ...routing }, 202);
}

/** A JSON object without NUL characters (PostgreSQL's jsonb cannot hold U+0000). */
function readPayload(raw: Buffer): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw refused('malformed', 'BAD_REQUEST', `the body is not JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw refused('malformed', 'BAD_REQUEST', 'the body is not a JSON object');
  if (JSON.stringify(body).includes('\\u0000'))
    throw refused('malformed', 'BAD_REQUEST', 'the body holds a NUL character (\\u0000)');
  return body as Record<string, unknown>;
}

/** Mounted at /api/webhooks (behind the api token); defined in src/shared/api/webhooks.ts. */
export function webhookRoutes(deps: ApiDeps) {
  const find = async (id: string) => {
    const delivery = await deps.webhooks.get(id);
    if (!delivery) throw notFound(`webhook delivery ${id}`);
    return delivery;
  };
  return router()
    .openapi(routes.listWebhookRefusals, async (c) =>
      c.json({ refusals: await deps.webhooks.refusals() }, 200),
    )
    .openapi(routes.listWebhookDeliveries, async (c) =>
      c.json({ deliveries: await deps.webhooks.list(c.req.valid('query').limit) }, 200),
    )
    .openapi(routes.getWebhookDelivery, async (c) =>
      c.json({ delivery: await find(c.req.valid('param').id) }, 200),
    )
    .openapi(routes.replayWebhookDelivery, async (c) => {
      const delivery = await find(c.req.valid('param').id);
      requireRedis(deps.redis);
      const provider = providerOf(delivery.provider)!;
      const event = toRepoEvent(provider, delivery.event, delivery.payload);
      // The operator (holding the api token) vouches for the replay; a subscriber whose secret did
      // not sign the original stays out.
      const refusedBefore = new Set(
        delivery.routed.filter((r) => !r.verified).map((r) => `${r.kind}:${r.id}`),
      );
      const targets: Target[] = (await findTargets(deps.db, event)).map((t) => ({
        ...t,
        verified: !refusedBefore.has(`${t.subscriber.kind}:${t.sub.id}`),
      }));
      const routing = await routeEvent(deps, event, { id: delivery.deliveryId, provider }, targets);
      const settled = await deps.webhooks.settle(delivery.id, routing);
      if (!settled) throw notFound(`webhook delivery ${delivery.id}`);
      return c.json({ delivery: settled }, 202);
    });
}
