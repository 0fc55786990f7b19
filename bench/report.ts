/** Percentiles and the result tables (markdown on stdout, so they can be pasted into a note). */
import type { CpuUse } from './cpu.js';
import {
  engineRatios,
  isSlow,
  ratio,
  SLOW_P50_MS,
  SYSTEM_LABELS,
  targetVerdicts,
  type Figures,
  type SystemId,
  type TargetResult,
} from './verdicts.js';

export interface Measured extends Figures {
  /** Latency samples taken (fewer than asked when the phase budget ran out). */
  samples: number;
  /** The throughput batch hit the phase budget: steps/s counts the steps finished by then. */
  partial: boolean;
  /** CPU used during the measured throughput batch (Linux only). */
  cpu?: CpuUse;
}

export interface Row {
  workers: number;
  system: SystemId;
  m: Measured;
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
const x = ratio;

export interface TableContext {
  environment: string;
  concurrency: number;
  latency: string;
  throughput: string;
  systems: string[];
}

const byWorkers = (rows: Row[]) => {
  const out = new Map<number, Partial<Record<SystemId, Measured>>>();
  for (const r of rows) out.set(r.workers, { ...out.get(r.workers), [r.system]: r.m });
  return out;
};

/** Prints the figures, the engine's ratios, the CPU per step and the targets; returns the verdicts. */
export function printTable(rows: Row[], ctx: TableContext): TargetResult[] {
  const out: string[] = [
    '',
    `Environment: ${ctx.environment}`,
    `Workload: 9-step no-op chain; every step's start and finish committed to PostgreSQL (the engine: as it records them); ` +
      `concurrency ${ctx.concurrency} per worker process for every system.`,
    `Systems: ${ctx.systems.join('; ')}.`,
    `Latency: ${ctx.latency}; end to end (request → completion observed by the bench).`,
    `Throughput: ${ctx.throughput}.`,
    '',
    '| worker processes | system | p50 ms | p99 ms | latency runs | steps/s |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const dagger = isSlow(r.m) ? ' †' : '';
    out.push(
      `| ${r.workers} | ${SYSTEM_LABELS[r.system]}${dagger} | ${ms(r.m.p50)} | ${ms(r.m.p99)} | ${r.m.samples} | ` +
        `${r.m.stepsPerSec.toFixed(0)}${r.m.partial ? ' ‡' : ''} |`,
    );
  }
  out.push(
    '',
    `† p50 over ${SLOW_P50_MS} ms: not counted as "the better peer" in the targets.`,
    '‡ the batch did not finish within the phase budget: steps/s counts the steps finished by then.',
    'Absolute times depend on the machine; the ratios against systems measured in this run are the result.',
  );

  const grouped = byWorkers(rows);
  const ratioRows: string[] = [];
  for (const [workers, results] of grouped)
    for (const r of engineRatios(results))
      ratioRows.push(
        `| ${workers} | ${SYSTEM_LABELS[r.against]} | ${x(r.p50)} | ${x(r.p99)} | ${x(r.stepsPerSec)} |`,
      );
  if (ratioRows.length)
    out.push(
      '',
      'The engine against each system (p50 and p99: below 1× is faster; steps/s: above 1× is more):',
      '',
      '| worker processes | engine vs | p50 | p99 | steps/s |',
      '|---|---|---|---|---|',
      ...ratioRows,
    );

  out.push(...cpuTable(rows));

  const verdicts = [...grouped].flatMap(([workers, results]) => targetVerdicts(workers, results));
  out.push(
    '',
    "Issue 8's speed targets:",
    '',
    '| worker processes | target | verdict | measured |',
    '|---|---|---|---|',
    ...verdicts.map((v) => `| ${v.workers} | ${v.target} | ${v.verdict} | ${v.measured} |`),
  );
  console.log(out.join('\n'));
  return verdicts;
}

/** Where the CPU went during each measured throughput batch, per step, so systems compare directly. */
function cpuTable(rows: Row[]): string[] {
  const measured = rows.filter((r) => r.m.cpu);
  if (!measured.length) return ['', '(CPU accounting needs Linux /proc; skipped.)'];
  const out = [
    '',
    'CPU during the measured throughput batch, in µs of CPU per step ("node" is this process plus the worker processes,',
    '"other" is everything else on the machine, e.g. other jobs sharing it; "machine busy" is the share of all cores in use):',
    '',
    '| worker processes | system | wall s | machine busy | postgres | redis | node | other | total |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { workers, system, m } of measured) {
    const cpu = m.cpu!;
    const steps = (m.stepsPerSec * cpu.wallMs) / 1000;
    const per = (v: number) => ((v * 1000) / steps).toFixed(0);
    const g = (name: string) => cpu.ms[name] ?? 0;
    const node = g('bench') + g('workers');
    const total = node + g('redis') + g('postgres') + g('other');
    out.push(
      `| ${workers} | ${SYSTEM_LABELS[system]} | ${(cpu.wallMs / 1000).toFixed(2)} | ${(cpu.machineBusy * 100).toFixed(0)}% | ` +
        `${per(g('postgres'))} | ${per(g('redis'))} | ${per(node)} | ${per(g('other'))} | ${per(total)} |`,
    );
  }
  return out;
}
