/**
 * Live progress of a followed run: one line per step transition. On a terminal the "running" line
 * is rewritten in place by its outcome; elsewhere (CI logs, pipes) every transition is its own line.
 */
import type { EventEnvelope } from '../shared/events.js';
import type { Output } from './output.js';
import {
  eventKind,
  stepLine,
  stepPrefix,
  stepOutcome,
  summaryLine,
  type StepPayload,
} from './render.js';

export class Progress {
  /** The step whose "running" line is open (TTY only: no newline written yet). */
  private open: string | undefined;
  private startedAt: string | undefined;

  constructor(private readonly out: Output) {}

  onEvent(e: EventEnvelope): void {
    this.startedAt ??= e.ts;
    if (eventKind(e) !== 'step') return;
    const p = e.payload as unknown as StepPayload;
    if (!this.out.tty) return this.out.line(stepLine(p));
    if (this.open === p.step) {
      this.out.write(`\r\x1b[2K${stepPrefix(p)} ${stepOutcome(p)}`);
    } else {
      this.closeLine();
      this.out.write(stepLine(p));
    }
    if (p.status === 'running') this.open = p.step;
    else {
      this.out.write('\n');
      this.open = undefined;
    }
  }

  /** Terminates an open in-place line, e.g. before a message or the summary. */
  closeLine(): void {
    if (this.open !== undefined) this.out.write('\n');
    this.open = undefined;
  }

  summary(terminal: EventEnvelope): string {
    this.closeLine();
    return summaryLine(terminal, this.startedAt);
  }
}
