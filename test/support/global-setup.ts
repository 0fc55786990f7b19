/**
 * Test services: real Redis and real PostgreSQL. REDIS_URL and DATABASE_URL are used when set (as
 * .ci/run sets them to this machine's services); otherwise both are started with testcontainers,
 * as a contributor with Docker would run them. A migrated template database is made once per run;
 * each test file clones its own database from it (see test/support/db.ts).
 */
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/shared/db.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { silentLogger } from '../../src/shared/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    databaseUrl: string;
    templateDb: string;
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function startContainers(): Promise<{
  redisUrl: string;
  databaseUrl: string;
  stop: () => Promise<void>;
}> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const redis = await new GenericContainer('redis:7-alpine')
    .withCommand(['redis-server', '--maxmemory-policy', 'noeviction', '--save', ''])
    .withExposedPorts(6379)
    .start();
  const postgres = await new GenericContainer('postgres:15-alpine')
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'test' })
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  return {
    redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
    databaseUrl: `postgres://postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/test`,
    stop: async () => {
      await redis.stop();
      await postgres.stop();
    },
  };
}

export default async function setup(project: TestProject) {
  let stopContainers = async () => {};
  let redisUrl = process.env.REDIS_URL;
  let databaseUrl = process.env.DATABASE_URL;
  if (!redisUrl || !databaseUrl) {
    const started = await startContainers();
    redisUrl ??= started.redisUrl;
    databaseUrl ??= started.databaseUrl;
    stopContainers = started.stop;
  }

  const templateDb = `norn_tmpl_${randomBytes(4).toString('hex')}`;
  const admin = createDb(databaseUrl, { log: silentLogger, max: 1 });
  await admin.query(`CREATE DATABASE ${templateDb}`);
  const template = createDb(withDatabase(databaseUrl, templateDb), { log: silentLogger, max: 1 });
  try {
    await migrate(template);
  } finally {
    await template.end();
  }

  project.provide('redisUrl', redisUrl);
  project.provide('databaseUrl', databaseUrl);
  project.provide('templateDb', templateDb);

  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`).catch(() => {});
    await admin.end();
    await stopContainers();
  };
}
