import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  closeQuietly,
  connectionCause,
  logConnectionErrors,
  redactUrlCredentials,
} from '../../src/shared/connection-errors.js';
import { createDb } from '../../src/shared/db.js';
import { createRedis } from '../../src/shared/redis.js';
import { recordingLogger, WARN } from './support/log.js';

const refused = (addr: string) =>
  Object.assign(new Error(`connect ECONNREFUSED ${addr}`), { code: 'ECONNREFUSED' });

function manualClock(start = 1_000_000) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => void (now += ms) };
}

describe('connection errors', () => {
  it('logs the first error with the connection and its cause', () => {
    const { log, lines } = recordingLogger();
    const emitter = new EventEmitter();
    logConnectionErrors(emitter, { name: 'redis:api', log, clock: manualClock().clock });
    emitter.emit('error', refused('127.0.0.1:6379'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: WARN,
      connection: 'redis:api',
      cause: 'connect ECONNREFUSED 127.0.0.1:6379',
      msg: 'redis:api connection error: connect ECONNREFUSED 127.0.0.1:6379',
    });
    expect(lines[0]).not.toHaveProperty('suppressed');
  });

  it('logs at most once per 10 s per connection and counts what it left out', () => {
    const { log, lines } = recordingLogger();
    const time = manualClock();
    const a = new EventEmitter();
    const b = new EventEmitter();
    logConnectionErrors(a, { name: 'redis:worker', log, clock: time.clock });
    logConnectionErrors(b, { name: 'postgres:norn', log, clock: time.clock });

    a.emit('error', refused('127.0.0.1:6379'));
    for (let i = 0; i < 5; i++) {
      time.advance(1_000);
      a.emit('error', refused('127.0.0.1:6379'));
    }
    // Another connection has a window of its own.
    b.emit('error', new Error('Connection terminated unexpectedly'));
    expect(lines.map((l) => l.connection)).toEqual(['redis:worker', 'postgres:norn']);

    time.advance(4_999); // 9.999 s after the first line
    a.emit('error', refused('127.0.0.1:6379'));
    expect(lines).toHaveLength(2);
    time.advance(1); // 10 s
    a.emit('error', new Error('read ECONNRESET'));
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({
      connection: 'redis:worker',
      cause: 'read ECONNRESET',
      suppressed: 6,
    });
    // The window starts again from the line just logged.
    time.advance(9_000);
    a.emit('error', refused('127.0.0.1:6379'));
    expect(lines).toHaveLength(3);
  });

  it('never logs credentials from a URL in the cause', () => {
    expect(
      redactUrlCredentials('redis://:hunter2@10.0.0.5:6379/0 and postgres://u:p%40ss@db/x'),
    ).toBe('redis://:[redacted]@10.0.0.5:6379/0 and postgres://u:[redacted]@db/x');
    const { log, lines } = recordingLogger();
    const emitter = new EventEmitter();
    logConnectionErrors(emitter, { name: 'postgres:norn', log });
    emitter.emit('error', new Error('cannot reach postgres://norn:s3cret@db.internal:5432/norn'));
    expect(JSON.stringify(lines)).not.toContain('s3cret');
    expect(lines[0]?.cause).toBe('cannot reach postgres://norn:[redacted]@db.internal:5432/norn');
  });

  it('names the error code when the message does not', () => {
    expect(connectionCause(Object.assign(new Error('socket closed'), { code: 'EPIPE' }))).toBe(
      'socket closed (EPIPE)',
    );
    expect(connectionCause(refused('127.0.0.1:1'))).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(connectionCause('plain text')).toBe('plain text');
  });

  it('a Redis connection created by createRedis logs its real connect errors by role', async () => {
    const { log, lines } = recordingLogger();
    // Port 1 on loopback refuses at once; no Redis is needed. The password must not be logged.
    const redis = createRedis('redis://:hunter2@127.0.0.1:1', 'api', log);
    try {
      await expect.poll(() => lines.length, { timeout: 5_000 }).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
    expect(lines[0]).toMatchObject({ level: WARN, connection: 'redis:api' });
    expect(String(lines[0]?.cause)).toContain('ECONNREFUSED');
    expect(JSON.stringify(lines)).not.toContain('hunter2');
  });

  it('a pool created by createDb logs an idle client error under its application name', async () => {
    const { log, lines } = recordingLogger();
    const pool = createDb('postgres://norn:s3cret@127.0.0.1:1/norn', {
      log,
      applicationName: 'norn-test',
    });
    // What pg emits when a server restart drops an idle client.
    pool.emit('error', new Error('Connection terminated unexpectedly'));
    await pool.end();
    expect(lines).toEqual([
      expect.objectContaining({
        connection: 'postgres:norn-test',
        cause: 'Connection terminated unexpectedly',
      }),
    ]);
  });

  it('closeQuietly writes a failed close at debug level and resolves', async () => {
    const { log, lines } = recordingLogger();
    await closeQuietly(
      () => Promise.reject(new Error('Connection is closed.')),
      'redis:steps',
      log,
    );
    expect(lines).toEqual([
      expect.objectContaining({
        level: 20,
        connection: 'redis:steps',
        cause: 'Connection is closed.',
      }),
    ]);
  });
});
