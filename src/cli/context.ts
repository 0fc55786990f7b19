/** What every command gets: the api client, the output, Ctrl-C, and its parsed arguments. */
import type { ApiClient } from './client.js';
import type { Output } from './output.js';

export interface CliContext {
  api: ApiClient;
  out: Output;
  /** Aborted by Ctrl-C / SIGTERM. */
  signal: AbortSignal;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** Returns the exit code. */
export type Command = (ctx: CliContext) => Promise<number>;

export const seg = (s: string) => encodeURIComponent(s);
