/** /api/scopes/:scope: who holds a scope (run, worker, lease expiry) and what waits there. */
import { Hono } from 'hono';
import { NornError } from '../../shared/errors.js';
import { SCOPE } from '../../queues/pipeline.js';
import type { ApiDeps } from '../deps.js';

export function scopeRoutes({ store }: ApiDeps) {
  return new Hono().get('/:scope', async (c) => {
    const scope = c.req.param('scope');
    if (!SCOPE.test(scope))
      throw new NornError(
        'BAD_REQUEST',
        `scope "${scope}" is not <app|stack|review|drift>:<key> (URL-encode "#" as %23)`,
      );
    return c.json(await store.scopeView(scope));
  });
}
