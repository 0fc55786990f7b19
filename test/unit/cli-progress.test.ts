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

function follow(tty: boolean, list: EventEnvelope[] = events): string {
  let text = '';
  const stream = {
    write: (s: string) => {
      text += s;
      return true;
    },
    isTTY: tty,
  };
  const progress = new Progress(new Output(stream, stream));
  for (const e of list) progress.onEvent(e);
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

  it("shows every Nomad task group's rollout on the one updating line", () => {
    const group = (g: string, healthy: number, desired: number, placed: number, unhealthy = 0) =>
      ev('deploy.progress', {
        step: 'healthy',
        group: g,
        ready: healthy,
        healthy,
        desired,
        placed,
        unhealthy,
      });
    const nomad = [
      ev('deploy.step', { ...healthy, status: 'running', attempt: 1 }),
      group('web', 0, 2, 1),
      group('worker', 1, 1, 1),
      group('web', 1, 2, 2, 1),
    ];
    expect(follow(true, nomad)).toBe(
      [
        '[7/9] healthy    running',
        '\r\x1b[2K[7/9] healthy    running (web 0/2 healthy, 1 placed)',
        '\r\x1b[2K[7/9] healthy    running (web 0/2 healthy, 1 placed · worker 1/1 healthy, 1 placed)',
        '\r\x1b[2K[7/9] healthy    running (web 1/2 healthy, 2 placed, 1 unhealthy · worker 1/1 healthy, 1 placed)',
      ].join(''),
    );
    expect(follow(false, nomad).split('\n')[3]).toBe(
      '[7/9] healthy    running (web 1/2 healthy, 2 placed, 1 unhealthy)',
    );
  });
});
