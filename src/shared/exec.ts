/**
 * Runs a program with an argv array (never a shell string) in a process group of its own, so that
 * an abort (cancel, shutdown) reaches the program and everything it started: SIGTERM to the whole
 * group, then SIGKILL after `killGraceMs`. Output is streamed line by line and the tail is kept for
 * error messages.
 */
import { spawn } from 'node:child_process';
import { NornError } from './errors.js';

export interface RunCommandOptions {
  signal?: AbortSignal;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the program's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Called for every complete output line (stdout and stderr interleaved as they arrive). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How many trailing lines to keep for the result and error messages. */
  tailLines?: number;
  killGraceMs?: number;
  /** Strings that must never appear in output handed to callers (tokens, keys). */
  redact?: string[];
}

export interface RunCommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  tail: string[];
}

const MAX_STDOUT = 4 * 1024 * 1024;

export function redactText(text: string, secrets: readonly string[] | undefined): string {
  if (!secrets) return text;
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}

/** Runs `argv` and resolves with its exit status; rejects only when it cannot start or is aborted. */
export function runCommand(
  argv: readonly string[],
  options: RunCommandOptions = {},
): Promise<RunCommandResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new NornError('BAD_REQUEST', 'runCommand needs a program'));
  const { signal, tailLines = 40, killGraceMs = 3_000 } = options;
  if (signal?.aborted) return Promise.reject(abortError(signal, file));

  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true, // own process group: kill(-pid) reaches grandchildren too
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    let stdout = '';
    const partial = { stdout: '', stderr: '' };
    let killTimer: NodeJS.Timeout | undefined;

    const emit = (line: string, stream: 'stdout' | 'stderr') => {
      const clean = redactText(line, options.redact);
      tail.push(clean);
      if (tail.length > tailLines) tail.shift();
      options.onLine?.(clean, stream);
    };
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (stream === 'stdout' && stdout.length < MAX_STDOUT) stdout += text;
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) emit(line.replace(/\r$/, ''), stream);
    };
    child.stdout.on('data', onData('stdout'));
    child.stderr.on('data', onData('stderr'));
    child.stdin.on('error', () => {}); // the program may exit before reading its input
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();

    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    const onAbort = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), killGraceMs);
      killTimer.unref();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new NornError('COMMAND_FAILED', `could not start ${file}: ${err.message}`, { cause: err }),
      );
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // Reap anything the program left behind in its group.
      if (signal?.aborted) killGroup('SIGKILL');
      for (const stream of ['stdout', 'stderr'] as const)
        if (partial[stream]) emit(partial[stream], stream);
      if (signal?.aborted) return reject(abortError(signal, file));
      resolve({ code, signal: sig, stdout: redactText(stdout, options.redact), tail });
    });
  });
}

/** Like runCommand, but a non-zero exit is a COMMAND_FAILED error carrying the output's tail. */
export async function runChecked(
  argv: readonly string[],
  options: RunCommandOptions = {},
): Promise<RunCommandResult> {
  const result = await runCommand(argv, options);
  if (result.code !== 0) {
    const shown = redactText(argv.slice(0, 3).join(' '), options.redact);
    throw new NornError(
      'COMMAND_FAILED',
      `${shown} exited with ${result.code ?? result.signal}:\n${result.tail.join('\n')}`,
      {
        details: { exitCode: result.code, tail: result.tail },
      },
    );
  }
  return result;
}

function abortError(signal: AbortSignal, file: string): NornError {
  const reason = typeof signal.reason === 'string' ? signal.reason : 'aborted';
  return new NornError('CANCELLED', `${file} stopped: ${reason}`, { details: { reason } });
}
