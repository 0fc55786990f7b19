/** /api/scopes/:scope: who holds a scope (run, worker, lease expiry) and what waits there. */
import { NornError } from '../../shared/errors.js';
import { getScope } from '../../shared/api/runs.js';
import { SCOPE } from '../../queues/pipeline.js';
import type { ApiDeps } from '../deps.js';
import { router } from './util.js';

export function scopeRoutes({ store }: ApiDeps) {
  return router().openapi(getScope, async (c) => {
    const { scope } = c.req.valid('param');
    if (!SCOPE.test(scope))
      throw new NornError(
        'BAD_REQUEST',
        `scope "${scope}" is not <app|stack|review|drift>:<key> (URL-encode "#" as %23)`,
      );
    return c.json(await store.scopeView(scope), 200);
  });
}
