import { describe, expect, it } from 'vitest';
import {
  describeDbError,
  isTransientDbError,
  retryDb,
  withStepLog,
} from '../../src/shared/db-retry.js';

const sqlError = (code: string, message = `error ${code}`) =>
  Object.assign(new Error(message), { code });
const refused = (addr: string) =>
  Object.assign(new Error(`connect ECONNREFUSED ${addr}`), { code: 'ECONNREFUSED' });

describe('transient database errors', () => {
  it.each([
    ['connection refused', refused('127.0.0.1:5432')],
    ['connection reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a pool connect timeout', new Error('timeout exceeded when trying to connect')],
    ['connection_failure (08006)', sqlError('08006')],
    [
      'admin_shutdown (57P01)',
      sqlError('57P01', 'terminating connection due to administrator command'),
    ],
    ['crash_shutdown (57P02)', sqlError('57P02')],
    ['cannot_connect_now (57P03)', sqlError('57P03', 'the database system is starting up')],
    ['too_many_connections (53300)', sqlError('53300')],
    ['serialization_failure (40001)', sqlError('40001')],
    ['deadlock_detected (40P01)', sqlError('40P01')],
    [
      'localhost refusing on both ::1 and 127.0.0.1',
      Object.assign(new AggregateError([refused('::1:5432'), refused('127.0.0.1:5432')], ''), {
        code: 'ECONNREFUSED',
      }),
    ],
  ])('%s is transient', (_, err) => expect(isTransientDbError(err)).toBe(true));

  it.each([
    ['a syntax error (42601)', sqlError('42601')],
    ['a unique violation (23505)', sqlError('23505')],
    ['a check violation (23514)', sqlError('23514')],
    ['bad input (22P02)', sqlError('22P02')],
    ['a missing table (42P01)', sqlError('42P01')],
    ['a disk full (53100)', sqlError('53100')],
    ['a plain error', new Error('boom')],
    ['a pool used after end', new Error('Cannot use a pool after calling end on the pool')],
    ['nothing', undefined],
  ])('%s is not', (_, err) => expect(isTransientDbError(err)).toBe(false));

  it('describes each with its real cause', () => {
    expect(describeDbError(refused('127.0.0.1:5432'))).toBe(
      'PostgreSQL unreachable: connect ECONNREFUSED 127.0.0.1:5432',
    );
    expect(
      describeDbError(sqlError('57P01', 'terminating connection due to administrator command')),
    ).toBe('PostgreSQL unreachable: terminating connection due to administrator command (57P01)');
    expect(describeDbError(sqlError('40001', 'could not serialize access'))).toBe(
      'PostgreSQL transaction conflict: could not serialize access (40001)',
    );
    const both = new AggregateError([refused('::1:5432'), refused('127.0.0.1:5432')], '');
    expect(describeDbError(Object.assign(both, { code: 'ECONNREFUSED' }))).toBe(
      'PostgreSQL unreachable: connect ECONNREFUSED ::1:5432, connect ECONNREFUSED 127.0.0.1:5432',
    );
    expect(describeDbError(sqlError('42601', 'syntax error at or near "SELEC"'))).toBe(
      'syntax error at or near "SELEC"',
    );
  });
});

describe('retryDb', () => {
  it('tries a transient failure again, writing each try to the step log, until it succeeds', async () => {
    const lines: string[] = [];
    let calls = 0;
    const result = await withStepLog(
      (l) => lines.push(l),
      () =>
        retryDb(
          async () => {
            if (++calls < 3) throw refused('127.0.0.1:5432');
            return 'ok';
          },
          { budgetMs: 10_000 },
        ),
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^PostgreSQL unreachable: connect ECONNREFUSED 127\.0\.0\.1:5432; trying again \(attempt 2, \d+\.\d s of 10\.0 s\)$/,
    );
    expect(lines[2]).toBe('PostgreSQL answered again after 2 failed tries');
  });

  it('gives up after its budget with UNAVAILABLE naming the cause', async () => {
    const started = Date.now();
    const err = await retryDb(() => Promise.reject(refused('127.0.0.1:5999')), {
      budgetMs: 1_000,
    }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(err).toMatchObject({
      name: 'NornError',
      code: 'UNAVAILABLE',
      retryable: true,
      message: 'PostgreSQL unreachable: connect ECONNREFUSED 127.0.0.1:5999 (tried for 1 s)',
    });
  });

  it('throws anything else at once, as it was thrown', async () => {
    let calls = 0;
    const syntax = sqlError('42601');
    await expect(
      retryDb(
        async () => {
          calls++;
          throw syntax;
        },
        { budgetMs: 10_000 },
      ),
    ).rejects.toBe(syntax);
    expect(calls).toBe(1);
  });
});
