/**
 * Live progress of a followed run: one line per step transition. On a terminal the "running" line
 * is rewritten in place by the step's progress ("running (1/2 ready)") and then its outcome;
 * elsewhere (CI logs, pipes) every transition and every progress report is its own line.
 */
import type { EventEnvelope } from '../shared/events.js';
import type { Output } from './output.js';
import {
  eventKind,
  progressText,
  stepLine,
  stepPrefix,
  stepOutcome,
  summaryLine,
  type ProgressPayload,
  type StepPayload,
} from './render.js';

export class Progress {
  /** The step whose "running" line is open (TTY only: no newline written yet). */
  private open: string | undefined;
  private startedAt: string | undefined;
  /** The step running now, as its "running" event said (progress lines need its index). */
  private running: StepPayload | undefined;
  /** The running step's last report per group (nomad reports each task group on its own). */
  private groups = new Map<string, string>();

  constructor(private readonly out: Output) {}

  onEvent(e: EventEnvelope): void {
    this.startedAt ??= e.ts;
    if (eventKind(e) === 'progress')
      return this.onProgress(e.payload as unknown as ProgressPayload);
    if (eventKind(e) !== 'step') return;
    const p = e.payload as unknown as StepPayload;
    this.running = p.status === 'running' ? p : undefined;
    this.groups.clear();
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

  /** A running step's progress: its line says how far it is ("running (1/2 ready)"). */
  private onProgress(p: ProgressPayload): void {
    const step = this.running;
    if (!step || step.step !== p.step) return;
    if (!this.out.tty) return this.out.line(`${stepPrefix(step)} running (${progressText(p)})`);
    // One updating line for every group: "running (web 1/2 healthy · worker 1/1 healthy)".
    this.groups.set(p.group ?? '', progressText(p));
    const text = `${stepPrefix(step)} running (${[...this.groups.values()].join(' · ')})`;
    if (this.open === p.step) this.out.write(`\r\x1b[2K${text}`);
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
