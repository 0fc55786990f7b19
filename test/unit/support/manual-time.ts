/**
 * Time that passes only when a test says so: a Clock and a Timer (src/shared/clock.ts) over one
 * hand-moved "now". advance() fires the timers that fall due, in order, letting the promises each
 * one starts settle before the next.
 */
import type { Clock, Timer } from '../../../src/shared/clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  unref: boolean;
}

/** Lets every promise chain that does not wait on real I/O run to its end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

export function manualTime(start = Date.UTC(2026, 0, 1)) {
  let now = start;
  let seq = 0;
  const pending: Pending[] = [];
  const clock: Clock = () => now;
  const timer: Timer = (ms, fn, options) => {
    const t: Pending = { at: now + Math.max(0, ms), seq: seq++, fn, unref: !!options?.unref };
    pending.push(t);
    return () => {
      const i = pending.indexOf(t);
      if (i >= 0) pending.splice(i, 1);
    };
  };
  return {
    clock,
    timer,
    /** Moves now forward by `ms`, firing each timer due on the way at its own time. */
    async advance(ms: number): Promise<void> {
      const until = now + ms;
      for (;;) {
        await settle();
        const due = pending
          .filter((t) => t.at <= until)
          .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
        if (!due) break;
        pending.splice(pending.indexOf(due), 1);
        now = due.at;
        due.fn();
      }
      now = until;
      await settle();
    },
    /** Moves now forward without firing anything (time a step spends working). */
    tick(ms: number): void {
      now += ms;
    },
    /** The timers waiting: in how many ms each falls due, and whether it is unref'd. */
    timers: () => pending.map((t) => ({ inMs: t.at - now, unref: t.unref })),
  };
}
