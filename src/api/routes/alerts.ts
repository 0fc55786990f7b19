/** /api/alerts: how recent alert deliveries ended (one row per alert per endpoint), newest first. */
import { Hono } from 'hono';
import { recentDeliveries } from '../../shared/alerts.js';
import { NornError } from '../../shared/errors.js';
import type { ApiDeps } from '../deps.js';

export function alertRoutes({ db }: ApiDeps) {
  return new Hono().get('/', async (c) => {
    const raw = c.req.query('limit') ?? '100';
    const limit = Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new NornError(
        'BAD_REQUEST',
        `limit must be a whole number from 1 to 1000, not "${raw.slice(0, 20)}"`,
      );
    return c.json({ deliveries: await recentDeliveries(db, limit) });
  });
}
