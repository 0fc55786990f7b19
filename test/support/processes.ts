/** Runs `src/main.ts` as a real process (as Procfile does), for kill/term and multi-process tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { waitFor } from './norn.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TEST_PIPELINES = fileURLToPath(new URL('./pipelines.ts', import.meta.url));

export interface NornProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves when a log line contains `text`. */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

export interface Tracked {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** stdout and stderr interleaved as they arrived. */
  output: () => string;
  /** Resolves with the exit code once the process has exited and its output streams closed. */
  exited: Promise<number | null>;
}

/** Spawns `node …args`, records its output, and SIGKILLs it when the test ends if it still runs. */
export function spawnTracked(
  args: string[],
  opts: { cwd: string; env: Record<string, string | undefined> },
): Tracked {
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let all = '';
  child.stdout!.on('data', (d) => {
    out += d;
    all += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
    all += d;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, stdout: () => out, stderr: () => err, output: () => all, exited };
}

export function spawnNorn(
  command: 'api' | 'worker' | 'all' | 'migrate',
  env: Record<string, string>,
): NornProcess {
  // node --import tsx: one process, so a signal reaches norn itself (the tsx CLI would relay it).
  const p = spawnTracked(['--import', 'tsx', 'src/main.ts', command], {
    cwd: ROOT,
    env: { LOG_LEVEL: 'info', ...env },
  });
  return {
    child: p.child,
    output: p.output,
    exited: p.exited,
    waitForLog: (text, timeoutMs = 20_000) =>
      waitFor(
        async () => p.output().includes(text),
        `"${text}" in the ${command} log:\n${p.output()}`,
        timeoutMs,
      ).then(() => {}),
    kill: (signal) => p.child.kill(signal),
  };
}
