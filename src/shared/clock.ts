/**
 * The engine's seams for time: reading it (`Clock`) and waiting on it (`Timer`). Modules take
 * both as optional dependencies with these defaults, so a test can drive time by hand.
 */

/** Milliseconds since the epoch. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/**
 * Calls `fn` once `ms` have passed (0 or less: on the next turn of the event loop) and returns
 * what cancels it. `unref`: the timer alone does not keep the process alive.
 */
export type Timer = (ms: number, fn: () => void, options?: { unref?: boolean }) => () => void;

export const systemTimer: Timer = (ms, fn, options) => {
  if (ms <= 0) {
    const immediate = setImmediate(fn);
    if (options?.unref) immediate.unref();
    return () => clearImmediate(immediate);
  }
  const timeout = setTimeout(fn, ms);
  if (options?.unref) timeout.unref();
  return () => clearTimeout(timeout);
};
