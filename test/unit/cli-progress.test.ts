/** The CLI's live progress (src/cli/progress.ts): a running step's line says how far it is. */
import { describe, expect, it } from 'vitest';
import { Output } from '../../src/cli/output.js';
import { Progress } from '../../src/cli/progress.js';
import { logLine } from '../../src/cli/render.js';
import type { EventEnvelope } from '../../src/shared/events.js';

let id = 0;
const ev = (type: string, payload: Record<string, unknown>): EventEnvelope => ({
  id: ++id,
  seq: id,
  type,
  appId: 'shop',
  runId: 'r1',
  sagaId: 'r1',
  ts: '2026-12-02T10:00:00.000Z',
  payload,
});

const healthy = { step: 'healthy', index: 7, total: 9 };
const events = [
  ev('deploy.step', { ...healthy, status: 'running', attempt: 1 }),
  ev('deploy.progress', { step: 'healthy', ready: 0, desired: 2 }),
  ev('deploy.progress', { step: 'healthy', ready: 2, desired: 2 }),
  ev('deploy.step', { ...healthy, status: 'complete', durationMs: 4200 }),
  ev('deploy.progress', { step: 'healthy', ready: 1, desired: 2 }), // late: its step is over
];

function follow(tty: boolean): string {
  let text = '';
  const stream = {
    write: (s: string) => {
      text += s;
      return true;
    },
    isTTY: tty,
  };
  const progress = new Progress(new Output(stream, stream));
  for (const e of events) progress.onEvent(e);
  return text;
}

describe('live progress', () => {
  it('prints each progress report of the running step as its own line in a pipe', () => {
    expect(follow(false).split('\n')).toEqual([
      '[7/9] healthy    running',
      '[7/9] healthy    running (0/2 ready)',
      '[7/9] healthy    running (2/2 ready)',
      '[7/9] healthy    complete 4.2s',
      '',
    ]);
  });

  it('rewrites the running line in place on a terminal, then with the outcome', () => {
    expect(follow(true)).toBe(
      [
        '[7/9] healthy    running',
        '\r\x1b[2K[7/9] healthy    running (0/2 ready)',
        '\r\x1b[2K[7/9] healthy    running (2/2 ready)',
        '\r\x1b[2K[7/9] healthy    complete 4.2s\n',
      ].join(''),
    );
  });

  it('norn logs shows a progress event as how far the step was', () => {
    expect(logLine(events[1]!)).toMatch(/ · healthy\s+0\/2 ready$/);
  });
});
