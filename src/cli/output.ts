/**
 * Where the CLI writes. Every line passes through `scrub`, so the API token can never reach the
 * terminal or a CI log, whatever message it ends up in (an echoed URL, an error from a proxy).
 */
import { redactText } from '../shared/exec.js';

export interface Stream {
  write(chunk: string): boolean;
  isTTY?: boolean;
}

export class Output {
  constructor(
    private readonly stdout: Stream,
    private readonly stderr: Stream,
    private readonly secrets: readonly string[] = [],
  ) {}

  /** True when stdout is a terminal: progress may rewrite lines in place. */
  get tty(): boolean {
    return this.stdout.isTTY === true;
  }

  scrub(text: string): string {
    return redactText(text, this.secrets.filter(Boolean));
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
