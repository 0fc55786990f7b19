/** LOG_FORMAT: pino's JSON lines, or the same redacted lines laid out for a person. */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';

function capture(format: 'json' | 'pretty') {
  const lines: string[] = [];
  const log = createLogger('debug', 'norn-test', format, { write: (l: string) => lines.push(l) });
  return { log, lines };
}

const RUN = { runId: 'r-1', scope: 'app:shop', pipeline: 'deploy', step: 'build', attempt: 2 };

describe('createLogger', () => {
  it('json: one object per line, secrets redacted', () => {
    const { log, lines } = capture('json');
    log.child(RUN).info({ token: 'tok-secret', image: 'x:1' }, 'built');
    const o = JSON.parse(lines[0]!);
    expect(o).toMatchObject({ ...RUN, msg: 'built', image: 'x:1', token: '[redacted]' });
  });

  it('pretty: time, level, the run in front, then the message and other fields; stacks below', () => {
    const { log, lines } = capture('pretty');
    log.child(RUN).info({ token: 'tok-secret', image: 'x:1' }, 'built');
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[run r-1 app:shop deploy\/build #2\] built token=\[redacted\] image=x:1\n$/,
    );
    expect(lines[0]).not.toContain('tok-secret');
    log.warn({ err: new Error('boom') }, 'failed');
    expect(lines[1]).toMatch(/^\S+ WARN {2}failed\n {2}Error: boom\n\s+at /);
    log.info('plain');
    expect(lines[2]).toMatch(/^\S+ INFO {2}plain\n$/);
  });
});
