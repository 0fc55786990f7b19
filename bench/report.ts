/** Percentiles and the result tables (markdown on stdout, so they can be pasted into a note). */
import type { CpuUse } from './cpu.js';

export const TARGETS = { latency: 1.5, throughput: 0.7 } as const;

export interface Measured {
  p50: number;
  p99: number;
  stepsPerSec: number;
  /** CPU used during the measured throughput batch (Linux only). */
  cpu?: CpuUse;
}

export interface Row {
  workers: number;
  raw: Measured;
  engine: Measured;
  pass?: boolean;
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

export function summarize(samples: readonly number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

const ms = (v: number) => v.toFixed(1);
const x = (v: number) => `${v.toFixed(2)}×`;
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

export interface TableContext {
  environment: string;
  concurrency: number;
  latency: string;
  throughput: string;
}

/** Prints the table; sets `pass` on every row (latency target on p50 and p99, throughput target). */
export function printTable(rows: Row[], ctx: TableContext): void {
  const out: string[] = [
    '',
    `Environment: ${ctx.environment}`,
    `Workload: 9-step no-op chain; NORN_WORKER_CONCURRENCY=${ctx.concurrency} per worker process for both.`,
    `Latency: ${ctx.latency}; end to end (request → completion observed by the bench).`,
    `Throughput: ${ctx.throughput}.`,
    `Targets: engine latency ≤ ${TARGETS.latency}× raw (p50 and p99), engine throughput ≥ ${TARGETS.throughput}× raw.`,
    '',
    '| worker processes | raw p50 / p99 ms | engine p50 / p99 ms | latency engine/raw p50 / p99 | raw steps/s | engine steps/s | throughput engine/raw | latency ≤ 1.5× | throughput ≥ 0.7× |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const l50 = r.engine.p50 / r.raw.p50;
    const l99 = r.engine.p99 / r.raw.p99;
    const t = r.engine.stepsPerSec / r.raw.stepsPerSec;
    const latencyOk = l50 <= TARGETS.latency && l99 <= TARGETS.latency;
    const throughputOk = t >= TARGETS.throughput;
    r.pass = latencyOk && throughputOk;
    out.push(
      `| ${r.workers} | ${ms(r.raw.p50)} / ${ms(r.raw.p99)} | ${ms(r.engine.p50)} / ${ms(r.engine.p99)} | ` +
        `${x(l50)} / ${x(l99)} | ${r.raw.stepsPerSec.toFixed(0)} | ${r.engine.stepsPerSec.toFixed(0)} | ${x(t)} | ` +
        `${verdict(latencyOk)} | ${verdict(throughputOk)} |`,
    );
  }
  out.push(
    '',
    'Absolute times depend on the machine; the ratios against the baseline measured in this run are the result.',
  );
  out.push(...cpuTable(rows));
  console.log(out.join('\n'));
}

/** Where the CPU went during each measured throughput batch, per step, so systems compare directly. */
function cpuTable(rows: Row[]): string[] {
  const measured = rows
    .flatMap((r) => [
      ['raw BullMQ', r.workers, r.raw] as const,
      ['engine', r.workers, r.engine] as const,
    ])
    .filter(([, , m]) => m.cpu);
  if (!measured.length) return ['', '(CPU accounting needs Linux /proc; skipped.)'];
  const groups = ['bench', 'workers', 'redis', 'postgres', 'other'];
  const out = [
    '',
    'CPU during the measured throughput batch, in µs of CPU per step ("bench" is this process, "other" is everything',
    'else on the machine, e.g. other jobs sharing it; "machine busy" is the share of all cores in use):',
    '',
    `| worker processes | system | wall s | machine busy | ${groups.join(' | ')} | total |`,
    `|---|---|---|---|${groups.map(() => '---|').join('')}---|`,
  ];
  for (const [label, workers, m] of measured) {
    const cpu = m.cpu!;
    const steps = (m.stepsPerSec * cpu.wallMs) / 1000;
    const per = (v: number) => ((v * 1000) / steps).toFixed(0);
    const total = groups.reduce((a, g) => a + (cpu.ms[g] ?? 0), 0);
    out.push(
      `| ${workers} | ${label} | ${(cpu.wallMs / 1000).toFixed(2)} | ${(cpu.machineBusy * 100).toFixed(0)}% | ` +
        `${groups.map((g) => per(cpu.ms[g] ?? 0)).join(' | ')} | ${per(total)} |`,
    );
  }
  return out;
}
