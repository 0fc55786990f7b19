/**
 * CPU accounting for a measured phase (Linux /proc only): how much CPU the bench process, the
 * worker processes, Redis, PostgreSQL (backends of the bench database plus the WAL writer) and
 * everything else on the machine used. On a small shared machine this tells "the engine does more
 * work per step" apart from "something else was using the cores".
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';

/** USER_HZ: Linux reports process CPU in 1/100 s on every common architecture. */
const TICK_MS = 10;

export const cpuAccountingAvailable = () =>
  existsSync('/proc/self/stat') && existsSync('/proc/stat');

export type PidGroups = Record<string, number[]>;

export interface CpuUse {
  wallMs: number;
  /** CPU ms per group, plus "other" (the rest of the machine's busy time). */
  ms: Record<string, number>;
  /** Share of all cores busy during the phase, 0..1. */
  machineBusy: number;
}

function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
  } catch {
    return undefined; // gone
  }
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal; guest is already in user
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

/** Direct children of this process (the worker processes: runCommand spawns node directly). */
export function childPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid)
        out.push(Number(name));
    } catch {
      /* exited while listing */
    }
  }
  return out;
}

/** Keeps only pids of local processes whose name starts with `comm` (the service may be remote). */
export function localPids(pids: number[], comm: string): number[] {
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith(comm);
    } catch {
      return false;
    }
  });
}

/**
 * Runs `work` and reports the CPU each group used meanwhile. Groups are listed again at the end:
 * a process that appeared during the phase (a new PostgreSQL backend) counts from zero.
 */
export async function withCpu<T>(
  groups: () => Promise<PidGroups>,
  work: () => Promise<T>,
): Promise<{ result: T; cpu: CpuUse }> {
  const before = new Map<number, number>();
  for (const pid of Object.values(await groups()).flat()) before.set(pid, processTicks(pid) ?? 0);
  const m0 = machineTicks();
  const t0 = performance.now();
  const result = await work();
  const wallMs = performance.now() - t0;
  const m1 = machineTicks();
  const ms: Record<string, number> = {};
  let ours = 0;
  for (const [name, pids] of Object.entries(await groups())) {
    let ticks = 0;
    for (const pid of new Set(pids))
      ticks += Math.max(0, (processTicks(pid) ?? before.get(pid) ?? 0) - (before.get(pid) ?? 0));
    ms[name] = ticks * TICK_MS;
    ours += ticks;
  }
  ms.other = Math.max(0, (m1.busy - m0.busy - ours) * TICK_MS);
  const machineBusy = m1.total > m0.total ? (m1.busy - m0.busy) / (m1.total - m0.total) : 0;
  return { result, cpu: { wallMs, ms, machineBusy } };
}

export const coreCount = () => cpus().length;
