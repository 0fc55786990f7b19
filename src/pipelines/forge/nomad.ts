/**
 * The forge and teardown steps of an app on the nomad target. Forge registers nothing early, as
 * the original norn v2 did not: the jobs are the deploy's (its submit registers them, with the
 * release's image and secrets), so create-deployment and create-service are skipped saying so,
 * and forge only routes: the app's endpoints and hosts.external, to the serving process's
 * address as Nomad's or Consul's catalog has it, in the cloudflared config file the docker host
 * uses too (NORN_CLOUDFLARED_CONFIG, restarted with NORN_CLOUDFLARED_RESTART). An app that does
 * not run yet has no address: the route is then the deploy's forge step's to write.
 *
 * Teardown removes the routes and deregisters every job of the app (the service job and the
 * periodic ones; purged with NORN_NOMAD_PURGE=true) with their secrets' Variables.
 */
import { NornError, isNornError } from '../../shared/errors.js';
import { removeAppIngress, setAppIngress } from '../../shared/drivers/cloudflared.js';
import { servingProcess, type Infraspec } from '../../shared/spec/infraspec.js';
import { skipStep, type StepContext } from '../../queues/pipeline.js';
import { targetFor } from '../../targets/index.js';
import { ingressFor } from '../deploy/ingress.js';
import { routesOf } from '../deploy/steps/forge.js';
import type { DeployServices } from '../deploy/types.js';

export const NOT_EARLY =
  'the nomad target registers jobs with the deploy (forge only routes, as norn v2 did)';

type Ctx = Pick<StepContext, 'run' | 'signal' | 'log'>;

export async function nomadPatch(ctx: Ctx, s: DeployServices, spec: Infraspec) {
  if (!spec.endpoints?.length && !spec.hosts?.external)
    return skipStep('no endpoints and no hosts.external');
  const ingress = ingressFor(s, spec);
  if ('skip' in ingress) return skipStep(ingress.skip);
  const chosen = servingProcess(spec.processes);
  if (!chosen)
    throw new NornError(
      'SPEC_INVALID',
      `app ${ctx.run.appId} declares endpoints or hosts.external but no process with a port to serve them`,
    );
  let address: { host: string; port: number };
  try {
    address = await targetFor(s.targets, spec).address(ctx.run.appId, chosen[0], spec);
  } catch (err) {
    if (isNornError(err) && err.code === 'NOT_FOUND')
      return skipStep(`${err.message}: the deploy routes it once the app runs`);
    throw err;
  }
  const service = `http://${address.host}:${address.port}`;
  const routes = routesOf(spec, service);
  const edited = await ingress.edit((t) => setAppIngress(t, ctx.run.appId, routes), ctx.signal);
  if (!edited) return skipStep(`cloudflared is not deployed (no ${ingress.where})`);
  ctx.log(
    edited.changed
      ? `${ingress.where}: ${routes.map((r) => r.hostname).join(', ')} → ${service}`
      : `${ingress.where}: rules already there`,
  );
  return { configMap: ingress.where, rule: routes[0]!, rules: routes, changed: edited.changed };
}

export async function nomadRestart(ctx: Ctx, s: DeployServices, spec: Infraspec) {
  const ingress = ingressFor(s, spec);
  if ('skip' in ingress) return skipStep(ingress.skip);
  const result = await ingress.restart({ signal: ctx.signal, log: ctx.log });
  ctx.log(result.note);
  if (!result.restarted) return skipStep(result.note);
  return { deployment: ingress.where, restartedAt: new Date().toISOString() };
}

export async function nomadUnpatch(ctx: Ctx, s: DeployServices, spec: Infraspec, host: string) {
  const ingress = ingressFor(s, spec);
  if ('skip' in ingress) return skipStep(ingress.skip);
  const edited = await ingress.edit((t) => removeAppIngress(t, ctx.run.appId), ctx.signal);
  if (!edited) return skipStep(`cloudflared is not deployed (no ${ingress.where})`);
  return { configMap: ingress.where, hostname: host, changed: edited.changed };
}

/** Deregisters the app's jobs; what was running is `deleted`, a job already stopped is not. */
export async function nomadDeregister(ctx: Ctx, s: DeployServices, spec: Infraspec) {
  const target = targetFor(s.targets, spec);
  const removed = await target.remove(ctx.run.appId, {
    signal: ctx.signal,
    log: ctx.log,
    redact: [],
  });
  const namespace = s.nomad?.namespace ?? 'default';
  const jobs = [...new Set(removed.map((u) => u.split('/')[0]!))];
  if (jobs.length === 0) ctx.log(`${ctx.run.appId} has no Nomad job running`);
  return {
    deleted: jobs.map((name) => ({ kind: 'Job', namespace, name })),
    gone: [],
  };
}
