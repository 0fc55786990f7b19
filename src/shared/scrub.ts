/** Errors on their way out (messages, logs, step errors) with secret values taken out. */
import { NornError, isNornError } from './errors.js';
import { redactText } from './exec.js';

/** The same error with secret values scrubbed from its message. */
export function scrubbed(err: unknown, redact: string[]): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const message = redactText(e.message, redact);
  if (message === e.message) return e;
  return isNornError(e)
    ? new NornError(e.code, message, { retryable: e.retryable, details: e.details })
    : new Error(message);
}
