/**
 * Where the CLI writes. Every line passes through `scrub`, so the API token can never reach the
 * terminal or a CI log, whatever message it ends up in (an app name it was typed as, an error from
 * a proxy).
 */
import { API_TOKEN_MIN_LENGTH } from '../shared/api-token.js';
import { redactText } from '../shared/exec.js';

/**
 * Only a value that could be a token of some norn api is a secret worth scrubbing. Every api
 * refuses shorter tokens, so a shorter `--token` opens nothing anywhere, while scrubbing it
 * blanks ordinary words: the token "wrong" turned "missing or wrong API token" into
 * "missing or *** API token".
 */
const couldBeToken = (s: string) => s.length >= API_TOKEN_MIN_LENGTH;

export interface Stream {
  write(chunk: string): boolean;
  isTTY?: boolean;
}

export class Output {
  private readonly secrets: readonly string[];

  constructor(
    private readonly stdout: Stream,
    private readonly stderr: Stream,
    secrets: readonly string[] = [],
  ) {
    this.secrets = secrets.filter(couldBeToken);
  }

  /** True when stdout is a terminal: progress may rewrite lines in place. */
  get tty(): boolean {
    return this.stdout.isTTY === true;
  }

  scrub(text: string): string {
    return redactText(text, this.secrets);
  }

  /** Raw text to stdout (no newline added). */
  write(text: string): void {
    this.stdout.write(this.scrub(text));
  }

  line(text = ''): void {
    this.write(`${text}\n`);
  }

  json(value: unknown): void {
    this.line(JSON.stringify(value, null, 2));
  }

  /** One compact JSON document per line (for streams of events). */
  ndjson(value: unknown): void {
    this.line(JSON.stringify(value));
  }

  error(text: string): void {
    this.stderr.write(this.scrub(`${text}\n`));
  }
}
