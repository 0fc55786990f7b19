/**
 * Durations in an infraspec: Go-style strings (`500ms`, `10s`, `5m`, `1h30m`) as the Go norn and
 * Nomad accept them, or a plain number of seconds (`30` or `"30"`). The parsed spec keeps what the
 * operator wrote (so it can be shown back verbatim); consumers turn it into milliseconds here.
 */
import { NornError } from '../errors.js';

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign, as Go accepts
  μs: 1e-3, // U+03BC Greek mu, as Go accepts
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const PLAIN_SECONDS = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
// One `<number><unit>` term; a duration is one or more of them with nothing in between.
const TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

const HINT = 'use a number of seconds or Go-style units such as 500ms, 10s, 5m or 1h30m';

function invalid(text: string | number, why: string): NornError {
  const shown = String(text).slice(0, 40);
  return new NornError('SPEC_INVALID', `"${shown}" is not a valid duration: ${why}`);
}

/**
 * Parses a duration into milliseconds (fractions are kept for sub-millisecond units).
 * Throws NornError('SPEC_INVALID') for negative, empty, non-finite or malformed input.
 */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text)) throw invalid(text, 'a number of seconds must be finite');
    if (text < 0) throw invalid(text, 'a number of seconds must be zero or more');
    return text * 1_000;
  }
  if (typeof text !== 'string') throw invalid(String(text), HINT);
  const value = text.trim();
  if (value === '') throw invalid(text, `it is empty; ${HINT}`);
  if (PLAIN_SECONDS.test(value)) return Number(value) * 1_000;

  let total = 0;
  let at = 0;
  while (at < value.length) {
    TERM.lastIndex = at;
    const match = TERM.exec(value);
    if (!match) throw invalid(text, HINT);
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    at = TERM.lastIndex;
  }
  if (!Number.isFinite(total)) throw invalid(text, 'it is too large');
  return total;
}

/**
 * Whole milliseconds of a duration, as the deploy uses them (timers and AbortSignal.timeout take
 * whole milliseconds): parseDuration rounded up, so a positive duration never becomes 0. The schema
 * checks every duration field with this same function, so a stored spec never fails here.
 */
export function durationMs(value: string | number): number {
  return Math.ceil(parseDuration(value));
}
