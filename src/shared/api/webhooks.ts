/** Routes under /api/webhooks and /api/alerts (paths relative to each). */
import { createRoute, z } from '@hono/zod-openapi';
import { errors, IdParam, intQuery, json } from './http.js';
import {
  AlertDeliveryList,
  WebhookDeliveryDetail,
  WebhookDeliveryList,
  WebhookRefusalList,
  WebhookReplayed,
} from './schemas.js';

const params = IdParam('The delivery (its norn id, a uuid).');

export const listWebhookRefusals = createRoute({
  method: 'get',
  path: '/refusals',
  tags: ['webhooks'],
  operationId: 'listWebhookRefusals',
  summary: 'Refused deliveries, counted by provider and reason',
  responses: { 200: json(WebhookRefusalList, 'The counts.'), ...errors() },
});

export const listWebhookDeliveries = createRoute({
  method: 'get',
  path: '/deliveries',
  tags: ['webhooks'],
  operationId: 'listWebhookDeliveries',
  summary: 'Verified deliveries, newest first',
  request: { query: z.object({ limit: intQuery(1, 500, 'At most this many (default 50).', 50) }) },
  responses: { 200: json(WebhookDeliveryList, 'The deliveries, without payloads.'), ...errors() },
});

export const getWebhookDelivery = createRoute({
  method: 'get',
  path: '/deliveries/{id}',
  tags: ['webhooks'],
  operationId: 'getWebhookDelivery',
  summary: 'One delivery with its payload',
  request: { params },
  responses: { 200: json(WebhookDeliveryDetail, 'The delivery.'), ...errors(404) },
});

export const replayWebhookDelivery = createRoute({
  method: 'post',
  path: '/deliveries/{id}/replay',
  tags: ['webhooks'],
  operationId: 'replayWebhookDelivery',
  summary: 'Route a delivery again (subscribers its signature did not verify stay out)',
  request: { params },
  responses: { 202: json(WebhookReplayed, 'The delivery as routed now.'), ...errors(404, 409) },
});

export const listAlertDeliveries = createRoute({
  method: 'get',
  path: '/',
  tags: ['alerts'],
  operationId: 'listAlertDeliveries',
  summary: 'How recent alert deliveries ended (one row per alert per endpoint), newest first',
  request: {
    query: z.object({ limit: intQuery(1, 1000, 'At most this many (default 100).', 100) }),
  },
  responses: { 200: json(AlertDeliveryList, 'The deliveries.'), ...errors() },
});
