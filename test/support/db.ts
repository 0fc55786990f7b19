/** Per-test-file databases, cloned from the migrated template made in global-setup. */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createDb, type Db } from '../../src/shared/db.js';
import { withDatabase } from './global-setup.js';
import { silentLogger } from '../../src/shared/logger.js';

export interface TestDatabase {
  name: string;
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh database with norn's schema (or empty, with `{ empty: true }`). Drop it in afterAll. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const base = inject('databaseUrl');
  const name = `norn_t_${randomBytes(5).toString('hex')}`;
  const admin = createDb(base, { log: silentLogger, max: 1 });
  try {
    await admin.query(
      options.empty
        ? `CREATE DATABASE ${name}`
        : `CREATE DATABASE ${name} TEMPLATE ${inject('templateDb')}`,
    );
  } finally {
    await admin.end();
  }
  const url = withDatabase(base, name);
  const db = createDb(url, { log: silentLogger, max: 10 });
  return {
    name,
    url,
    db,
    async drop() {
      await db.end();
      const a = createDb(base, { log: silentLogger, max: 1 });
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await a.end();
    },
  };
}
