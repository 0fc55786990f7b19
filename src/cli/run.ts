/** The CLI as a function of argv, env and streams; returns the exit code (main.ts does the exiting). */
import { isNornError } from '../shared/errors.js';
import { COMMANDS, commandHelp, mainHelp, parseCommandLine } from './args.js';
import { ApiClient } from './client.js';
import type { Command } from './context.js';
import { EXIT, CliError } from './errors.js';
import { Output, type Stream } from './output.js';
import { cancel, deploy, resume } from './commands/runs.js';
import { forge, teardown } from './commands/forge.js';
import { logs } from './commands/logs.js';
import { snapshots } from './commands/snapshots.js';
import { status } from './commands/status.js';

const HANDLERS: Record<keyof typeof COMMANDS, Command> = {
  deploy,
  forge,
  teardown,
  status,
  logs,
  cancel,
  resume,
  snapshots,
};

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: Stream;
  stderr: Stream;
  signal: AbortSignal;
}

export async function runCli(io: CliIo): Promise<number> {
  // Scrub the env token until the flags are parsed (a usage error may echo a flag value).
  let out = new Output(io.stdout, io.stderr, [io.env.NORN_API_TOKEN ?? '']);
  try {
    const parsed = parseCommandLine(io.argv);
    const token = (parsed.values.token as string | undefined) ?? io.env.NORN_API_TOKEN;
    out = new Output(io.stdout, io.stderr, [token ?? '', io.env.NORN_API_TOKEN ?? '']);
    if (parsed.values.help) {
      const text = parsed.command ? commandHelp(parsed.command) : mainHelp();
      if (parsed.values.bare) {
        out.error(text);
        return EXIT.usage;
      }
      out.line(text);
      return EXIT.ok;
    }
    const api = new ApiClient({
      baseUrl: (parsed.values.api as string | undefined) ?? io.env.NORN_API_URL ?? DEFAULT_API_URL,
      token,
      signal: io.signal,
    });
    const handler = HANDLERS[parsed.command!]!;
    return await handler({
      api,
      out,
      signal: io.signal,
      positionals: parsed.positionals,
      values: parsed.values,
    });
  } catch (err) {
    return report(out, err);
  }
}

function report(out: Output, err: unknown): number {
  if (err instanceof CliError) {
    if (err.exitCode !== EXIT.interrupted) out.error(`norn: ${err.message}`);
    return err.exitCode;
  }
  // Anything else is a bug in the CLI (or an api answer of an unexpected shape): say so plainly.
  const message = isNornError(err) || err instanceof Error ? err.message : String(err);
  out.error(`norn: unexpected error: ${message}`);
  return EXIT.api;
}
