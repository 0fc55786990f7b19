/** The event contract (../shared/DESIGN.md "Events"): envelope and status names. */
export type StepStatus = 'running' | 'complete' | 'failed' | 'skipped' | 'cancelled';

export interface EventEnvelope<P = Record<string, unknown>> {
  /** Grows monotonically; reconnect with `lastEventId` to be replayed what was missed. */
  id: number;
  /** Gapless per app, in commit order: how relays detect a missed or reordered message. */
  seq: number;
  type: string;
  appId: string;
  sagaId: string;
  ts: string;
  payload: P;
}

export const isEnvelope = (v: unknown): v is EventEnvelope =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as EventEnvelope).id === 'number' &&
  typeof (v as EventEnvelope).seq === 'number' &&
  typeof (v as EventEnvelope).appId === 'string';

/** Redis pub/sub channels; all prefixed so installations (and tests) can share one Redis. */
export const channels = (prefix: string) => ({
  events: `${prefix}:events`,
  cancel: `${prefix}:cancel`,
});
