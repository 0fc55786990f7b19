/**
 * Deploy step `forge`: routes the app's endpoints through the cloudflared tunnel. Sets the app's
 * ingress rules where its target's tunnel reads them (ingress.ts: NORN_CLOUDFLARED_CONFIG on the
 * docker host, the cloudflared ConfigMap in the cluster), other apps' rules and the catch-all
 * untouched and the catch-all kept last, and restarts the tunnel only when the rules changed, so
 * an unchanged re-deploy never drops the tunnel's connections. The app's rules as they were are
 * recorded on the release first: a run that does not finish has them put back by the deploy
 * finalizer. On kubernetes the rules send requests to the app's Service
 * (`<svc>.<ns>.svc.cluster.local:80`); on nomad to the serving process's address in Consul's or
 * Nomad's catalog. The route the forge pipeline made for hosts.external is kept.
 */
import { NornError } from '../../../shared/errors.js';
import {
  endpointToRoute,
  listIngress,
  setAppIngress,
  type AppRoute,
} from '../../../shared/drivers/cloudflared.js';
import { normHost } from '../../../shared/drivers/cloudflared-routes.js';
import { servingProcess, type Infraspec } from '../../../shared/spec/infraspec.js';
import { skipStep } from '../../../queues/pipeline.js';
import { targetFor, type Target } from '../../../targets/index.js';
import { withAppLock } from '../app-lock.js';
import { parseSpec } from '../docker-runtime.js';
import { ingressFor } from '../ingress.js';
import { deployStep } from '../types.js';

/**
 * The service endpoints route to: the `web` process's address, else the first process with a
 * port, as its target reports it (docker: the host's loopback port; kubernetes: the Service).
 */
async function servingService(target: Target, app: string, spec: Infraspec): Promise<string> {
  const chosen = servingProcess(spec.processes); // the schema refuses endpoints without one
  if (!chosen)
    throw new NornError(
      'SPEC_INVALID',
      'endpoints are declared but no process has a port (and replicas) to serve them',
    );
  const { host, port } = await target.address(app, chosen[0], spec);
  return `http://${host}:${port}`;
}

/** The app's rules in a config as it is now. */
function rulesOf(text: string, app: string): AppRoute[] {
  return listIngress(text)
    .filter((r) => r.app === app && r.hostname !== undefined)
    .map((r) => ({
      hostname: r.hostname!,
      service: r.service,
      ...(r.path ? { path: r.path } : {}),
    }));
}

/**
 * The rules the deploy sets: one per endpoint, and on kubernetes also the hosts.external route
 * the forge pipeline made (the deploy sets all the app's rules; it must not drop that one).
 */
export function routesOf(spec: Infraspec, service: string): AppRoute[] {
  const routes = (spec.endpoints ?? []).map((e) => endpointToRoute(e.url, service));
  const external = spec.hosts?.external;
  // The forge pipeline routes hosts.external on kubernetes (to the hosts.internal Service) and
  // on nomad (to the serving process's address).
  const forged = (spec.target === 'kubernetes' && spec.hosts?.internal) || spec.target === 'nomad';
  if (forged && external && !routes.some((r) => r.hostname === normHost(external) && !r.path))
    routes.push({ hostname: normHost(external)!, service });
  return routes;
}

export const forge = deployStep('forge', {
  async run(ctx, s) {
    const spec = parseSpec(ctx.run.spec);
    if (!spec.endpoints?.length) return skipStep('no endpoints');
    const ingress = ingressFor(s, spec);
    if ('skip' in ingress) return skipStep(ingress.skip);

    const service = await servingService(targetFor(s.targets, spec), ctx.run.appId, spec);
    const routes = routesOf(spec, service);
    const edited = await withAppLock(s.db, ctx.run.appId, ctx.signal, async () => {
      const text = await ingress.read(ctx.signal);
      if (text === undefined) return undefined;
      // Before writing: what a compensation of this run reverts to (compensate.ts).
      await s.releases.recordRoutesBefore(ctx.run.id, rulesOf(text, ctx.run.appId));
      return ingress.edit((t) => setAppIngress(t, ctx.run.appId, routes), ctx.signal);
    });
    if (!edited) return skipStep(`cloudflared is not deployed (no ${ingress.where})`);
    ctx.log(
      edited.changed
        ? `ingress rules for ${routes.map((r) => r.hostname).join(', ')} written to ${ingress.where}`
        : 'ingress rules unchanged',
    );
    let restarted = false;
    // An earlier attempt may have written the rules and died before the restart: restart again then.
    if (edited.changed || ctx.step.attempt > 1) {
      const result = await ingress.restart({ signal: ctx.signal, log: ctx.log });
      restarted = result.restarted;
      ctx.log(result.note);
    }
    return { routes, changed: edited.changed, restarted };
  },
});
