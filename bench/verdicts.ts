/**
 * The bench's arithmetic, kept pure so a unit test pins it: every engine ratio of one worker-count
 * configuration, and issue 8's speed targets as PASS / MISS / n/a with the figure they were decided on.
 */

/** Systems the bench can run (BENCH_SYSTEMS), in the order they run and print. */
export const SYSTEMS = [
  'raw',
  'engine',
  'bullmq-insert',
  'graphile',
  'pg-boss',
  'pg-boss-notify',
] as const;
export type SystemId = (typeof SYSTEMS)[number];

export const SYSTEM_LABELS: Record<SystemId, string> = {
  raw: 'raw BullMQ',
  engine: 'engine',
  'bullmq-insert': 'BullMQ+INSERT',
  graphile: 'graphile-worker',
  'pg-boss': 'pg-boss',
  'pg-boss-notify': 'pg-boss+notify',
};

/** The durable PostgreSQL queues the engine is measured against. */
export const DURABLE_PEERS: readonly SystemId[] = ['graphile', 'pg-boss', 'pg-boss-notify'];

/** A peer configuration this slow is marked † and does not count as "the better peer". */
export const SLOW_P50_MS = 100;

export const TARGETS = {
  /** engine steps/s ≥ this × the better durable peer's (among configurations under SLOW_P50_MS). */
  peerThroughput: 2,
  /** engine p50 ≤ this × the better durable peer's p50. */
  peerLatency: 0.5,
  /** No regression: engine steps/s ≥ this × raw BullMQ's (the ratio of the previous bench). */
  rawThroughputFloor: 0.27,
  /** No regression: engine p50 ≤ this × raw BullMQ's. */
  rawLatencyCeiling: 2.2,
  /** Where the engine is heading: steps/s ≥ this × raw BullMQ's. */
  rawThroughputGoal: 0.4,
} as const;

export interface Figures {
  p50: number;
  p99: number;
  stepsPerSec: number;
}

export type Verdict = 'PASS' | 'MISS' | 'n/a';

export interface TargetResult {
  workers: number;
  target: string;
  verdict: Verdict;
  /** The measured figure(s) the verdict was decided on. */
  measured: string;
}

export const isSlow = (f: Figures) => f.p50 > SLOW_P50_MS;

export interface Ratio {
  against: SystemId;
  /** engine p50 / theirs: below 1 is faster. */
  p50: number;
  p99: number;
  /** engine steps/s / theirs: above 1 is more. */
  stepsPerSec: number;
}

/** The engine against every other system measured in the same configuration. */
export function engineRatios(results: Partial<Record<SystemId, Figures>>): Ratio[] {
  const e = results.engine;
  if (!e) return [];
  return SYSTEMS.filter((s) => s !== 'engine' && results[s]).map((s) => {
    const o = results[s]!;
    return {
      against: s,
      p50: e.p50 / o.p50,
      p99: e.p99 / o.p99,
      stepsPerSec: e.stepsPerSec / o.stepsPerSec,
    };
  });
}

/** A ratio as printed: two decimals, or two significant digits below 0.1 (so 0.003× is not "0.00×"). */
export const ratio = (v: number) => `${v >= 0.1 ? v.toFixed(2) : v.toPrecision(2)}×`;
const x = ratio;
const f0 = (v: number) => v.toFixed(0);
const f1 = (v: number) => v.toFixed(1);

/**
 * Issue 8's speed targets for one worker-count configuration. "The better peer" is, per measure,
 * the best durable-peer figure among configurations with p50 under SLOW_P50_MS: the highest steps/s
 * and the lowest p50 (each may come from a different peer). A target whose baseline was not run
 * (BENCH_SYSTEMS) or has no eligible configuration is n/a.
 */
export function targetVerdicts(
  workers: number,
  results: Partial<Record<SystemId, Figures>>,
): TargetResult[] {
  const out: TargetResult[] = [];
  const e = results.engine;
  const push = (target: string, verdict: Verdict, measured: string) =>
    out.push({ workers, target, verdict, measured });
  const ok = (b: boolean): Verdict => (b ? 'PASS' : 'MISS');

  const peerTarget = `engine ≥ ${TARGETS.peerThroughput}× steps/s and ≤ ${TARGETS.peerLatency}× p50 of the better of graphile-worker and pg-boss (p50 < ${SLOW_P50_MS} ms)`;
  const peers = DURABLE_PEERS.filter((s) => results[s]);
  const eligible = peers.filter((s) => !isSlow(results[s]!));
  if (!e || !peers.length) push(peerTarget, 'n/a', 'not run');
  else if (!eligible.length)
    push(peerTarget, 'n/a', `no peer configuration with p50 < ${SLOW_P50_MS} ms`);
  else {
    const fastest = eligible.reduce((a, b) =>
      results[b]!.stepsPerSec > results[a]!.stepsPerSec ? b : a,
    );
    const quickest = eligible.reduce((a, b) => (results[b]!.p50 < results[a]!.p50 ? b : a));
    const t = e.stepsPerSec / results[fastest]!.stepsPerSec;
    const l = e.p50 / results[quickest]!.p50;
    push(
      peerTarget,
      ok(t >= TARGETS.peerThroughput && l <= TARGETS.peerLatency),
      `${x(t)} steps/s of ${SYSTEM_LABELS[fastest]} (${f0(e.stepsPerSec)} vs ${f0(results[fastest]!.stepsPerSec)}), ` +
        `${x(l)} p50 of ${SYSTEM_LABELS[quickest]} (${f1(e.p50)} vs ${f1(results[quickest]!.p50)} ms)`,
    );
  }

  const ins = results['bullmq-insert'];
  const insTarget = 'engine ≥ BullMQ+INSERT steps/s and p50 ≤ its p50';
  if (!e || !ins) push(insTarget, 'n/a', 'not run');
  else
    push(
      insTarget,
      ok(e.stepsPerSec >= ins.stepsPerSec && e.p50 <= ins.p50),
      `${f0(e.stepsPerSec)} vs ${f0(ins.stepsPerSec)} steps/s (${x(e.stepsPerSec / ins.stepsPerSec)}), ` +
        `p50 ${f1(e.p50)} vs ${f1(ins.p50)} ms (${x(e.p50 / ins.p50)})`,
    );

  const raw = results.raw;
  const floorTarget = `no regression: engine ≥ ${TARGETS.rawThroughputFloor}× raw steps/s and ≤ ${TARGETS.rawLatencyCeiling}× raw p50`;
  const goalTarget = `toward: engine ≥ ${TARGETS.rawThroughputGoal}× raw steps/s`;
  if (!e || !raw) {
    push(floorTarget, 'n/a', 'not run');
    push(goalTarget, 'n/a', 'not run');
  } else {
    const t = e.stepsPerSec / raw.stepsPerSec;
    const l = e.p50 / raw.p50;
    push(
      floorTarget,
      ok(t >= TARGETS.rawThroughputFloor && l <= TARGETS.rawLatencyCeiling),
      `${x(t)} steps/s, ${x(l)} p50`,
    );
    push(goalTarget, ok(t >= TARGETS.rawThroughputGoal), `${x(t)} steps/s`);
  }
  return out;
}
