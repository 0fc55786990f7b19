/**
 * Deploy step `forge`: routes the app's endpoints through the cloudflared tunnel. Sets the app's
 * ingress rules in NORN_CLOUDFLARED_CONFIG (other apps' rules and the catch-all untouched, the
 * catch-all kept last) and restarts the tunnel only when the file changed, so an unchanged
 * re-deploy never drops the tunnel's connections.
 */
import { NornError } from '../../../shared/errors.js';
import {
  endpointToRoute,
  restartTunnel,
  setAppIngress,
  updateIngressFile,
} from '../../../shared/drivers/cloudflared.js';
import { servingProcess, type Infraspec } from '../../../shared/spec/infraspec.js';
import { skipStep, type StepDefinition, type StepSkipped } from '../../../queues/pipeline.js';
import { parseSpec } from '../docker-runtime.js';
import type { DeployServices, ForgeOutput } from '../types.js';

/** The port endpoints are served from: the `web` process's, else the first process with a port. */
function servingPort(spec: Infraspec): number {
  const chosen = servingProcess(spec.processes); // the schema refuses endpoints without one
  if (!chosen)
    throw new NornError(
      'SPEC_INVALID',
      'endpoints are declared but no process has a port (and replicas) to serve them',
    );
  return chosen[1].port!;
}

export const forge: StepDefinition<DeployServices> = {
  name: 'forge',
  async run(ctx, s): Promise<ForgeOutput | StepSkipped> {
    const spec = parseSpec(ctx.run.spec);
    if (!spec.endpoints?.length) return skipStep('no endpoints');
    const configPath = s.cloudflared.configPath;
    if (!configPath) return skipStep('endpoints declared but NORN_CLOUDFLARED_CONFIG is not set');

    const service = `http://127.0.0.1:${servingPort(spec)}`;
    const routes = spec.endpoints.map((e) => endpointToRoute(e.url, service));
    const { changed } = await updateIngressFile(
      configPath,
      (text) => setAppIngress(text, ctx.run.appId, routes),
      { signal: ctx.signal },
    );
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
};
