/** Pure formatting for the CLI: durations, sizes, times, tables, and event lines. */
import type { EventEnvelope } from '../shared/events.js';

export interface StepPayload {
  step: string;
  status: string;
  index: number;
  total: number;
  durationMs?: number;
  attempt?: number;
  error?: string;
  willRetry?: boolean;
  reason?: string;
}

/** `<prefix>.progress`: how far a running step is (a rollout's ready replicas). */
export interface ProgressPayload {
  step: string;
  ready: number;
  desired: number;
  /** Per task group (nomad): the group, and its placed and unhealthy allocations. */
  group?: string;
  placed?: number;
  healthy?: number;
  unhealthy?: number;
}

/** "1/2 ready", or for a group "web 1/2 healthy, 2 placed, 1 unhealthy". */
export function progressText(p: ProgressPayload): string {
  if (p.group === undefined) return `${p.ready}/${p.desired} ready`;
  const extra = [
    p.placed !== undefined ? `${p.placed} placed` : '',
    p.unhealthy ? `${p.unhealthy} unhealthy` : '',
  ].filter(Boolean);
  return `${p.group} ${p.healthy ?? p.ready}/${p.desired} healthy${extra.length ? `, ${extra.join(', ')}` : ''}`;
}

/** Width step names are padded to (the longest deploy step, "snapshot", fits with room). */
export const STEP_WIDTH = 10;

/** 340ms · 12.3s · 2m05s · 1h02m */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const s = Math.round(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3_600)}h${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`;
}

/** 512 B · 1.5 KiB · 12.0 MiB */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** HH:MM:SS in local time (set TZ to choose). */
export function formatClock(ts: string | Date): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
}

/** "just now", "42s ago", "3m ago", "5h ago", "2d ago"; "-" when unknown. */
export function formatAge(ts: string | Date | null | undefined, now = Date.now()): string {
  if (!ts) return '-';
  const ms = now - new Date(ts).getTime();
  if (!Number.isFinite(ms)) return '-';
  if (ms < 0) return `in ${formatDuration(-ms)}`;
  const s = Math.floor(ms / 1_000);
  if (s < 2) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3_600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One-line form of an error (multi-line command output keeps only its first line here). */
export function oneLine(text: string | null | undefined): string {
  const first =
    String(text ?? '')
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? '';
  return first.length > 300 ? `${first.slice(0, 297)}...` : first;
}

/** "[3/9] build      running" (without the outcome). */
export function stepPrefix(p: StepPayload): string {
  return `[${p.index}/${p.total}] ${p.step.padEnd(STEP_WIDTH)}`;
}

/** The outcome part of a step line: "complete 12.3s", "failed: boom", "skipped (reason)"… */
export function stepOutcome(p: StepPayload): string {
  const took = p.durationMs === undefined ? '' : ` ${formatDuration(p.durationMs)}`;
  switch (p.status) {
    case 'running':
      return p.attempt && p.attempt > 1 ? `running (attempt ${p.attempt})` : 'running';
    case 'complete':
      return `complete${took}`;
    case 'failed':
      return p.willRetry
        ? `failed: ${oneLine(p.error)} (attempt ${p.attempt ?? '?'}, retrying)`
        : `failed: ${oneLine(p.error)}`;
    case 'skipped':
      return p.reason ? `skipped (${p.reason})` : 'skipped';
    case 'cancelled':
      return 'cancelled';
    default:
      return p.status;
  }
}

export const stepLine = (p: StepPayload) => `${stepPrefix(p)} ${stepOutcome(p)}`;

/** "deploy.step" → "step"; "restore.completed" → "completed". */
export const eventKind = (e: Pick<EventEnvelope, 'type'>) =>
  e.type.slice(e.type.lastIndexOf('.') + 1);
/** "deploy.step" → "deploy". */
export const eventPipeline = (e: Pick<EventEnvelope, 'type'>) =>
  e.type.slice(0, Math.max(0, e.type.lastIndexOf('.')));
export const isTerminal = (e: Pick<EventEnvelope, 'type'>) =>
  ['completed', 'failed'].includes(eventKind(e));

const MARK: Record<string, string> = {
  running: '▸',
  complete: '✓',
  failed: '✗',
  skipped: '↷',
  cancelled: '⊘',
};

/** `norn logs` line: "12:03:04 ✓ [3/9] build      complete 12.3s". */
export function logLine(e: EventEnvelope): string {
  const at = formatClock(e.ts);
  const p = e.payload as Record<string, unknown>;
  const what = eventPipeline(e) || e.type;
  switch (eventKind(e)) {
    case 'step': {
      const step = p as unknown as StepPayload;
      const mark = step.status === 'failed' && step.willRetry ? '↻' : (MARK[step.status] ?? '·');
      return `${at} ${mark} ${stepLine(step)}`;
    }
    case 'progress': {
      const progress = p as unknown as ProgressPayload;
      return `${at} · ${progress.step.padEnd(STEP_WIDTH)} ${progressText(progress)}`;
    }
    case 'queued':
      return `${at} · ${what} queued (deployment ${String(p.deploymentId ?? '?')}${p.resumedFrom ? `, resuming ${String(p.resumedFrom)}` : ''})`;
    case 'completed':
      return `${at} ✓ ${what} completed${p.imageTag ? ` (${String(p.imageTag)})` : ''}`;
    case 'failed':
      return `${at} ${p.cancelled ? '⊘' : '✗'} ${failureText(what, e.appId, p)}`;
    default:
      return `${at} · ${e.type} ${JSON.stringify(p)}`;
  }
}

/** Lines after an error's first, indented (e.g. the output tail of a container that exited). */
function errorDetail(text: string): string {
  const rest = text
    .split('\n')
    .slice(1)
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(0, 40);
  return rest.map((l) => `\n    ${l.trim()}`).join('');
}

function failureText(what: string, app: string, p: Record<string, unknown>): string {
  const at = p.step ? ` at ${String(p.step)}` : '';
  const text = String(p.error ?? 'no error recorded');
  const error = oneLine(text);
  if (!p.cancelled) return `${what} of ${app} failed${at}: ${error}${errorDetail(text)}`;
  const reason = error.replace(/^cancelled:?\s*/, '');
  return `${what} of ${app} cancelled${at}${reason ? ` (${reason})` : ''}`;
}

/** The last line of a followed run: "deployed web test:9 in 41.2s" or "deploy of web failed at build: …". */
export function summaryLine(terminal: EventEnvelope, startedAt: string | undefined): string {
  const what = eventPipeline(terminal) || 'run';
  const p = terminal.payload as Record<string, unknown>;
  if (eventKind(terminal) === 'failed') return failureText(what, terminal.appId, p);
  const took = startedAt
    ? ` in ${formatDuration(new Date(terminal.ts).getTime() - new Date(startedAt).getTime())}`
    : '';
  if (what === 'deploy')
    return `deployed ${terminal.appId}${p.imageTag ? ` ${String(p.imageTag)}` : ''}${took}`;
  if (what === 'restore')
    return `restored ${terminal.appId}${p.snapshot ? ` from ${String(p.snapshot)}` : ''}${took}`;
  return `${what} of ${terminal.appId} completed${took}`;
}
