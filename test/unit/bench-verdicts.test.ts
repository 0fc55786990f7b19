import { describe, expect, it } from 'vitest';
import { engineRatios, ratio, targetVerdicts, type Figures } from '../../bench/verdicts.js';

const f = (p50: number, stepsPerSec: number, p99 = p50 * 2): Figures => ({ p50, p99, stepsPerSec });
const verdictOf = (rows: ReturnType<typeof targetVerdicts>, start: string) =>
  rows.find((r) => r.target.startsWith(start))!;

describe('bench verdicts', () => {
  it('divides the engine by every other system measured, in the bench order', () => {
    const ratios = engineRatios({
      engine: f(10, 1000, 30),
      graphile: f(40, 250, 60),
      raw: f(5, 4000, 10),
    });
    expect(ratios.map((r) => r.against)).toEqual(['raw', 'graphile']);
    expect(ratios[0]).toEqual({ against: 'raw', p50: 2, p99: 3, stepsPerSec: 0.25 });
    expect(ratios[1]).toMatchObject({ p50: 0.25, p99: 0.5, stepsPerSec: 4 });
  });

  it('judges the peer target on the best eligible figure of each measure, skipping † configurations', () => {
    const rows = targetVerdicts(1, {
      engine: f(20, 1000),
      graphile: f(45, 400), // eligible, the quicker
      'pg-boss-notify': f(90, 600), // eligible, the faster: 1000 / 600 < 2 → MISS
      'pg-boss': f(3000, 5000), // † : would be "better" on steps/s if it counted
    });
    const peer = verdictOf(rows, 'engine ≥ 2×');
    expect(peer.verdict).toBe('MISS');
    expect(peer.measured).toContain('1.67× steps/s of pg-boss+notify');
    expect(peer.measured).toContain('0.44× p50 of graphile-worker');

    const pass = targetVerdicts(1, { engine: f(20, 1300), 'pg-boss-notify': f(90, 600) });
    expect(verdictOf(pass, 'engine ≥ 2×').verdict).toBe('PASS');
  });

  it('is n/a when every peer configuration is over 100 ms or none ran', () => {
    const slow = targetVerdicts(2, { engine: f(20, 1000), 'pg-boss': f(400, 50) });
    expect(verdictOf(slow, 'engine ≥ 2×')).toMatchObject({ verdict: 'n/a', workers: 2 });
    expect(verdictOf(targetVerdicts(1, { engine: f(1, 1) }), 'engine ≥ BullMQ').verdict).toBe(
      'n/a',
    );
  });

  it('prints small ratios with significant digits, not as 0.00×', () => {
    expect(ratio(0.0028)).toBe('0.0028×');
    expect(ratio(2.704)).toBe('2.70×');
  });

  it('needs both halves of the BullMQ+INSERT and no-regression targets', () => {
    const ins = (e: Figures) =>
      verdictOf(targetVerdicts(1, { engine: e, 'bullmq-insert': f(30, 500) }), 'engine ≥ BullMQ')
        .verdict;
    expect(ins(f(30, 500))).toBe('PASS');
    expect(ins(f(31, 900))).toBe('MISS');
    expect(ins(f(10, 499))).toBe('MISS');

    const raw = (e: Figures) => targetVerdicts(1, { engine: e, raw: f(10, 1000) });
    expect(verdictOf(raw(f(22, 270)), 'no regression').verdict).toBe('PASS');
    expect(verdictOf(raw(f(22.1, 270)), 'no regression').verdict).toBe('MISS');
    expect(verdictOf(raw(f(10, 269)), 'no regression').verdict).toBe('MISS');
    expect(verdictOf(raw(f(10, 399)), 'toward').verdict).toBe('MISS');
    expect(verdictOf(raw(f(10, 400)), 'toward').verdict).toBe('PASS');
  });
});
