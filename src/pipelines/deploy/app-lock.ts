/**
 * One writer at a time for an app's containers and routes on its target. A run's lease keeps two
 * runs of an app apart, but not the compensation of a cancelled or failed run, which the deploy
 * finalizer does after that run ended, when the app's next run may already be in submit; nor a
 * step that ignored its cancel past NORN_CANCEL_GRACE_MS. Whoever changes what serves (submit,
 * a rollback, forge, the finalizer's compensation) holds this lock meanwhile.
 *
 * A PostgreSQL session advisory lock: held by one pool connection, so a worker that dies (and its
 * connection with it) lets go of it at once.
 */
import type { Db } from '../../shared/db.js';
import { pause } from '../../shared/pause.js';

/** Distinct from any other advisory lock norn takes (the key space is shared per database). */
const LOCK_NAMESPACE = 'norn.deploy.app-target:';
const RETRY_MS = 250;

/**
 * Runs `fn` holding app `app`'s target lock, waiting for it as long as `signal` allows (a
 * cancelled waiter stops waiting: CANCELLED).
 */
export async function withAppLock<T>(
  db: Db,
  app: string,
  signal: AbortSignal,
  fn: () => Promise<T>,
  onWait?: () => void,
): Promise<T> {
  const client = await db.connect();
  let held = false;
  try {
    for (let waited = false; ; waited = true) {
      const { rows } = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
        [LOCK_NAMESPACE + app],
      );
      if (rows[0]?.ok) break;
      if (!waited) onWait?.();
      await pause(RETRY_MS, signal);
    }
    held = true;
    return await fn();
  } finally {
    const unlocked = held
      ? await client
          .query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [LOCK_NAMESPACE + app])
          .then(
            () => true,
            () => false,
          )
      : true;
    // Could not unlock: drop the connection, and the lock with it.
    client.release(unlocked ? undefined : true);
  }
}

export const lockWaitNote = (app: string) =>
  `waiting for app ${app}'s target: another deploy or a compensation is changing it`;
