/** Runs the `norn` CLI (bin/norn.mjs) as a child process and records what it prints. */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../norn.js';
import { spawnTracked } from '../processes.js';

export const NORN_BIN = fileURLToPath(new URL('../../../bin/norn.mjs', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<string>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `node bin/norn.mjs …args` from / (it must work from any directory), with TZ=UTC. */
export function startCli(args: string[], env: Record<string, string | undefined>): CliProcess {
  const p = spawnTracked([NORN_BIN, ...args], { cwd: '/', env: { TZ: 'UTC', ...env } });
  return {
    child: p.child,
    stdout: p.stdout,
    stderr: p.stderr,
    exited: p.exited,
    waitForOutput: (text, timeoutMs = 20_000) =>
      waitFor(
        async () => {
          const out = p.stdout();
          const m =
            typeof text === 'string' ? (out.includes(text) ? text : null) : text.exec(out)?.[0];
          return m ?? null;
        },
        `${String(text)} in the CLI output:\n${p.stdout()}\n${p.stderr()}`,
        timeoutMs,
      ),
  };
}

export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 30_000,
): Promise<CliResult> {
  const p = startCli(args, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
