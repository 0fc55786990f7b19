/** An abortable sleep: CANCELLED (with the signal's reason) when `signal` aborts first. */
import { setTimeout as delay } from 'node:timers/promises';
import { NornError } from './errors.js';

export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    throw new NornError(
      'CANCELLED',
      `stopped: ${typeof signal.reason === 'string' ? signal.reason : 'aborted'}`,
    );
  }
}
