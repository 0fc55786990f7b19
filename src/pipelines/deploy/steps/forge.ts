/**
 * Deploy step `forge`: routes the app's endpoints through the cloudflared tunnel. Sets the app's
 * ingress rules in NORN_CLOUDFLARED_CONFIG (other apps' rules and the catch-all untouched, the
 * catch-all kept last) and restarts the tunnel only when the file changed, so an unchanged
 * re-deploy never drops the tunnel's connections. The app's rules as they were are recorded on
 * the release first: a run that does not finish has them put back by the deploy finalizer.
 */
import { NornError } from '../../../shared/errors.js';
import { readFile } from 'node:fs/promises';
import {
  EMPTY_INGRESS_CONFIG,
  endpointToRoute,
  listIngress,
  restartTunnel,
  setAppIngress,
  updateIngressFile,
  type AppRoute,
} from '../../../shared/drivers/cloudflared.js';
import { servingProcess, type Infraspec } from '../../../shared/spec/infraspec.js';
import { skipStep } from '../../../queues/pipeline.js';
import { targetFor, type Target } from '../../../targets/index.js';
import { withAppLock } from '../app-lock.js';
import { parseSpec } from '../docker-runtime.js';
import { deployStep } from '../types.js';

/**
 * The service endpoints route to: the `web` process's address, else the first process with a
 * port, as its target reports it (docker: the host's loopback port).
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

/** The app's rules in the config file as they are now (a missing file has none). */
async function appRoutes(configPath: string, app: string): Promise<AppRoute[]> {
  const text = await readFile(configPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return EMPTY_INGRESS_CONFIG;
    throw err;
  });
  return listIngress(text)
    .filter((r) => r.app === app && r.hostname !== undefined)
    .map((r) => ({
      hostname: r.hostname!,
      service: r.service,
      ...(r.path ? { path: r.path } : {}),
    }));
}

export const forge = deployStep('forge', {
  async run(ctx, s) {
    const spec = parseSpec(ctx.run.spec);
    if (!spec.endpoints?.length) return skipStep('no endpoints');
    const configPath = s.cloudflared.configPath;
    if (!configPath) return skipStep('endpoints declared but NORN_CLOUDFLARED_CONFIG is not set');

    const service = await servingService(targetFor(s.targets, spec), ctx.run.appId, spec);
    const routes = spec.endpoints.map((e) => endpointToRoute(e.url, service));
    const { changed } = await withAppLock(s.db, ctx.run.appId, ctx.signal, async () => {
      // Before writing: what a compensation of this run reverts to (compensate.ts).
      await s.releases.recordRoutesBefore(ctx.run.id, await appRoutes(configPath, ctx.run.appId));
      return updateIngressFile(configPath, (text) => setAppIngress(text, ctx.run.appId, routes), {
        signal: ctx.signal,
      });
    });
    ctx.log(
      changed
        ? `ingress rules for ${routes.map((r) => r.hostname).join(', ')} written to ${configPath}`
        : 'ingress rules unchanged',
    );
    let restarted = false;
    // An earlier attempt may have written the file and died before the restart: restart again then.
    if (changed || ctx.step.attempt > 1) {
      const result = await restartTunnel(s.cloudflared.restartArgv, {
        signal: ctx.signal,
        onLine: ctx.log,
      });
      restarted = !result.skipped;
      ctx.log(result.skipped ? `tunnel not restarted: ${result.skipped}` : 'tunnel restarted');
    }
    return { routes, changed, restarted };
  },
});
