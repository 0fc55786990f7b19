/** Redis pub/sub: events (after they are committed to PostgreSQL) and cancel broadcasts. */
import type { Redis } from 'ioredis';
import { channels, type EventEnvelope } from '../shared/events.js';

export class EventBus {
  private readonly ch: ReturnType<typeof channels>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.ch = channels(prefix);
  }

  /**
   * Publishes committed events, in order, as one message (a JSON array: one PUBLISH per commit, not
   * per event; read with parseEvents). Losing one is tolerated: relays catch up from PostgreSQL.
   */
  publish(events: readonly EventEnvelope[] | undefined): Promise<void> {
    return this.publishText(events?.map((e) => JSON.stringify(e)) ?? []);
  }

  /** publish() for events that are JSON text already (as PostgreSQL returned them). */
  async publishText(events: readonly string[]): Promise<void> {
    if (!events.length) return;
    await this.redis.publish(this.ch.events, `[${events.join(',')}]`);
  }

  async broadcastCancel(runId: string): Promise<void> {
    await this.redis.publish(this.ch.cancel, runId);
  }
}
