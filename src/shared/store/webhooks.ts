/**
 * Webhook deliveries (each verified one, kept for inspection and replay) and refusals (counted
 * only): 002_webhooks.sql.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db.js';

/** What a delivery did for one subscriber: the run it started, or why it started none. */
export interface RoutedEntry {
  kind: string;
  id: string;
  /** False: the delivery's signature was not made with this subscriber's secret; never routed. */
  verified: boolean;
  started?: string;
  skipped?: string;
}

export type DeliveryOutcome = 'received' | 'started' | 'ignored' | 'failed';

export interface DeliveryRecord {
  id: string;
  provider: string;
  event: string;
  deliveryId: string;
  receivedAt: string;
  repository: string | null;
  outcome: DeliveryOutcome;
  reason: string | null;
  routed: RoutedEntry[];
}

export interface RefusalCount {
  provider: string;
  reason: string;
  count: number;
  lastAt: string;
}

const SUMMARY = `id, provider, event, delivery_id AS "deliveryId", received_at AS "receivedAt",
  repository, outcome, reason, routed`;

export class WebhookStore {
  constructor(private readonly db: Db) {}

  /** Counts one refused delivery under (provider, reason). */
  async countRefusal(provider: string, reason: string): Promise<void> {
    await this.db.query(
      `INSERT INTO webhook_refusals (provider, reason, count) VALUES ($1, $2, 1)
       ON CONFLICT (provider, reason)
       DO UPDATE SET count = webhook_refusals.count + 1, last_at = now()`,
      [provider, reason],
    );
  }

  async refusals(): Promise<RefusalCount[]> {
    const { rows } = await this.db.query<RefusalCount>(
      `SELECT provider, reason, count::int AS count, last_at AS "lastAt"
       FROM webhook_refusals ORDER BY provider, reason`,
    );
    return rows;
  }

  /** Records a delivery; undefined when (provider, deliveryId) was recorded before. */
  async insert(d: {
    provider: string;
    event: string;
    deliveryId: string;
    repository: string | undefined;
    payload: unknown;
  }): Promise<DeliveryRecord | undefined> {
    const { rows } = await this.db.query<DeliveryRecord>(
      `INSERT INTO webhook_deliveries (id, provider, event, delivery_id, repository, payload)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (provider, delivery_id) DO NOTHING RETURNING ${SUMMARY}`,
      [
        randomUUID(),
        d.provider,
        d.event,
        d.deliveryId,
        d.repository ?? null,
        JSON.stringify(d.payload),
      ],
    );
    return rows[0];
  }

  /** Sets what the delivery did (again, on a replay). */
  async settle(
    id: string,
    r: { outcome: DeliveryOutcome; reason: string | null; routed: RoutedEntry[] },
  ): Promise<DeliveryRecord | undefined> {
    const { rows } = await this.db.query<DeliveryRecord>(
      `UPDATE webhook_deliveries SET outcome = $2, reason = $3, routed = $4 WHERE id = $1
       RETURNING ${SUMMARY}`,
      [id, r.outcome, r.reason, JSON.stringify(r.routed)],
    );
    return rows[0];
  }

  /** The newest first. */
  async list(limit: number): Promise<DeliveryRecord[]> {
    const { rows } = await this.db.query<DeliveryRecord>(
      `SELECT ${SUMMARY} FROM webhook_deliveries ORDER BY received_at DESC, id LIMIT $1`,
      [limit],
    );
    return rows;
  }

  /** One delivery with its payload; undefined for an unknown (or not a uuid) id. */
  async get(id: string): Promise<(DeliveryRecord & { payload: unknown }) | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const { rows } = await this.db.query<DeliveryRecord & { payload: unknown }>(
      `SELECT ${SUMMARY}, payload FROM webhook_deliveries WHERE id = $1`,
      [id],
    );
    return rows[0];
  }
}
