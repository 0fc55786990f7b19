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

export function spawnNorn(command: 'api' | 'worker' | 'all' | 'migrate', env: Record<string, string>): NornProcess {
  // node --import tsx: one process, so a signal reaches norn itself (the tsx CLI would relay it).
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', command], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    output: () => out,
    exited,
    waitForLog: (text, timeoutMs = 20_000) => waitFor(async () => out.includes(text), `"${text}" in the ${command} log:\n${out}`, timeoutMs).then(() => {}),
    kill: (signal) => child.kill(signal),
  };
}
