/** The event contract (../shared/DESIGN.md "Events"): envelope and status names. */
export type StepStatus = 'running' | 'complete' | 'failed' | 'skipped' | 'cancelled';

export interface EventEnvelope<P = Record<string, unknown>> {
  /** Grows monotonically; reconnect with `lastEventId` to be replayed what was missed. */
  id: number;
  /** Gapless per app, in commit order: how relays detect a missed or reordered message. */
  seq: number;
  type: string;
  appId: string;
  /** The run the event belongs to. */
  runId: string;
  /** The run id again, under its earlier name (one id per run). */
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

/**
 * The events of one pub/sub message: a transaction's committed events go out as one message, a
 * JSON array in commit order (a single envelope is read too). Anything else yields none.
 */
export function parseEvents(message: string): EventEnvelope[] {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return [];
  }
  return (Array.isArray(value) ? value : [value]).filter(isEnvelope);
}

/** Redis pub/sub channels; all prefixed so installations (and tests) can share one Redis. */
export const channels = (prefix: string) => ({
  events: `${prefix}:events`,
  cancel: `${prefix}:cancel`,
});
