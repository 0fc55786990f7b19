/**
 * DATABASE_URL, what an app declaring infrastructure.postgres finds its database in: one helper
 * (withDatabaseUrl) adds it to the secrets of every release norn makes (submit, a rollback, a cron
 * tick, forge), so it is a secret wherever secrets go, and the app's own DATABASE_URL wins.
 */
import { describe, expect, it } from 'vitest';
import { withDatabaseUrl } from '../../src/pipelines/deploy/docker-runtime.js';
import { isNornError } from '../../src/shared/errors.js';
import { aSpec, specOf } from '../support/infraspec.js';

const ADMIN = 'postgres://norn:pa%40ss@db.internal:5432/postgres?sslmode=require';
const withDb = (extra: Record<string, unknown> = {}) =>
  specOf(aSpec({ infrastructure: { postgres: { database: 'shop_db' } }, ...extra }));

describe('withDatabaseUrl', () => {
  it('adds the app database on the NORN_APP_DATABASE_URL server, password and options kept', () => {
    expect(withDatabaseUrl({ appDatabaseUrl: ADMIN }, 'shop', withDb(), { TOKEN: 't' })).toEqual({
      DATABASE_URL: 'postgres://norn:pa%40ss@db.internal:5432/shop_db?sslmode=require',
      TOKEN: 't',
    });
  });

  it('leaves the secrets as they are for an app without infrastructure.postgres', () => {
    const secrets = { TOKEN: 't' };
    expect(withDatabaseUrl({ appDatabaseUrl: ADMIN }, 'shop', specOf(aSpec()), secrets)).toBe(
      secrets,
    );
  });

  it("lets the app's own DATABASE_URL win: a secret, the app's env or a process's env", () => {
    const own = { DATABASE_URL: 'postgres://elsewhere/db' };
    expect(withDatabaseUrl({ appDatabaseUrl: ADMIN }, 'shop', withDb(), own)).toEqual(own);
    expect(
      withDatabaseUrl({ appDatabaseUrl: ADMIN }, 'shop', withDb({ env: own }), { T: '1' }),
    ).toEqual({ T: '1' });
    const perProcess = withDb({ processes: { web: { port: 8080, env: own }, worker: {} } });
    expect(withDatabaseUrl({ appDatabaseUrl: ADMIN }, 'shop', perProcess, {})).toEqual({});
    // Needing none of norn's, the app deploys without NORN_APP_DATABASE_URL too.
    expect(withDatabaseUrl({ appDatabaseUrl: undefined }, 'shop', withDb(), own)).toEqual(own);
  });

  it('refuses UNAVAILABLE, naming NORN_APP_DATABASE_URL, when the worker has none', () => {
    let err: unknown;
    try {
      withDatabaseUrl({ appDatabaseUrl: undefined }, 'shop', withDb(), {});
    } catch (e) {
      err = e;
    }
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toBe(
      'app shop declares infrastructure.postgres (database shop_db), whose URL its processes get as DATABASE_URL, but NORN_APP_DATABASE_URL is not set on this worker',
    );
  });
});
