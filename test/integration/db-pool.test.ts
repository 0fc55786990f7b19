/**
 * The pool norn's processes share (src/shared/db.ts) when the server drops a connection that is
 * checked out but between queries, as an advisory lock held through a step or a hook's open
 * transaction is: pg emits the error on the client, and with nobody listening that is an uncaught
 * exception, which ends a worker. The client's next query must fail instead.
 */
import { afterAll, expect, inject, it } from 'vitest';
import { createDb } from '../../src/shared/db.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let t: TestDatabase | undefined;
afterAll(async () => {
  await t?.drop();
});

it('a checked-out client whose connection the server ends fails its next query, and nothing is uncaught', async () => {
  t = await createTestDatabase();
  const client = await t.db.connect();
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  const admin = createDb(inject('databaseUrl'), { log: silentLogger, max: 1 });
  try {
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    await new Promise((r) => setTimeout(r, 300));
    expect(uncaught).toEqual([]);
    await expect(client.query('SELECT 1')).rejects.toThrow();
  } finally {
    process.off('uncaughtException', onUncaught);
    client.release(true);
    await admin.end();
  }
});
