/** /api/alerts: how recent alert deliveries ended (one row per alert per endpoint), newest first. */
import { recentDeliveries } from '../../shared/alerts.js';
import { listAlertDeliveries } from '../../shared/api/webhooks.js';
import type { ApiDeps } from '../deps.js';
import { router } from './util.js';

export function alertRoutes({ db }: ApiDeps) {
  return router().openapi(listAlertDeliveries, async (c) =>
    c.json({ deliveries: await recentDeliveries(db, c.req.valid('query').limit) }, 200),
  );
}
