/**
 * The forge and teardown steps on the kubernetes target (and on nomad, where forge only routes
 * and teardown deregisters the jobs: nomad.ts). Each is idempotent: forge's create an
 * object unless the app's own is there already (the output says which; Secrets are written over
 * with the values of now), teardown's take one away and count one already gone as removed (never
 * a PersistentVolumeClaim: the app's data stays). The objects are the kubernetes target's
 * (names, labels, builders in src/targets/kubernetes/objects.ts): a forged app's first deploy
 * takes them over.
 */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { NornError } from '../../shared/errors.js';
import { listIngress, removeAppIngress, setAppIngress } from '../../shared/drivers/cloudflared.js';
import { servingProcess, type Infraspec } from '../../shared/spec/infraspec.js';
import { skipStep, type StepContext } from '../../queues/pipeline.js';
import { isScheduled } from '../../targets/docker/runtime.js';
import {
  claimsOf,
  cronJobOf,
  deploymentOf,
  namespaceOf,
  objectName,
  secretOf,
  serviceOf,
} from '../../targets/kubernetes/objects.js';
import type { TargetRelease } from '../../targets/types.js';
import { parseSpec, releaseSecrets, scrubbed, withDatabaseUrl } from '../deploy/docker-runtime.js';
import { SECRETS_FILES } from '../deploy/secrets-file.js';
import type { DeployServices } from '../deploy/types.js';
import {
  CLOUDFLARED_RESTART_TIMEOUT_MS,
  CONFIG_KEY,
  deleteObject,
  editConfigMap,
  ensureObject,
  restartDeployment,
  writeObject,
} from './cluster.js';
import { NOT_EARLY, nomadDeregister, nomadPatch, nomadRestart, nomadUnpatch } from './nomad.js';
import { readForgeState } from './state.js';
import { forgeStep, teardownStep, type ForgeResources } from './types.js';

/** The app's spec, refused unless it runs on the kubernetes or nomad target. */
export function forgeSpec(ctx: Pick<StepContext, 'run'>): Infraspec {
  const spec = parseSpec(ctx.run.spec);
  if (spec.target !== 'kubernetes' && spec.target !== 'nomad')
    throw new NornError(
      'SPEC_INVALID',
      `app ${ctx.run.appId} runs on the ${spec.target ?? 'docker'} target; forge and teardown are for target: kubernetes or nomad`,
    );
  return spec;
}

/** The app's spec when it runs on kubernetes; undefined on nomad (whose steps are nomad.ts's). */
function kubeOnly(ctx: Pick<StepContext, 'run'>): Infraspec | undefined {
  const spec = forgeSpec(ctx);
  return spec.target === 'kubernetes' ? spec : undefined;
}

/** The release forge writes objects for: the app's image at :latest until a deploy sets one. */
function forgeRelease(
  ctx: Pick<StepContext, 'run'>,
  s: DeployServices,
  secrets: Record<string, string> = {},
): TargetRelease {
  const spec = forgeSpec(ctx);
  return {
    app: ctx.run.appId,
    id: 0,
    deploymentId: ctx.run.id,
    imageRef: `${s.registryUrl}/${ctx.run.appId}:latest`,
    spec,
    secrets,
  };
}

/**
 * The secrets the forged pods get: DATABASE_URL (with infrastructure.postgres) and, once the app
 * has a release, the active release's decrypted secrets file. Before the first deploy there is
 * none: the repository's secrets come with the deploy, which writes the same Secrets over.
 */
async function forgeSecrets(ctx: StepContext, s: DeployServices, spec: Infraspec) {
  const active = await s.releases.active(ctx.run.appId);
  if (active) {
    ctx.log(`secrets: those of release ${active.id}, the active one`);
    return releaseSecrets(s, active, spec);
  }
  ctx.log(
    `secrets: ${ctx.run.appId} has no release yet; the repository's secrets (${SECRETS_FILES[0]}) come with its first deploy`,
  );
  return withDatabaseUrl(s, ctx.run.appId, spec, {});
}

type Touched = { kind: string; namespace: string; name: string };
const DONE = { created: 'created', existing: 'already exists', updated: 'updated' } as const;

/**
 * The Secrets (created or written over), the volumes' claims and the Deployments and CronJobs
 * (created unless there) of `release`, in the order the pods need them. Says keys, never values.
 */
async function forgeObjects(ctx: StepContext, s: DeployServices, release: TargetRelease) {
  const c = s.kube.connect();
  const namespace = namespaceOf(release.spec);
  const out = {
    namespace,
    image: release.imageRef,
    deployments: [] as string[],
    cronJobs: [] as string[],
    secrets: [] as { name: string; keys: string[] }[],
    claims: [] as string[],
    created: [] as Touched[],
    existing: [] as Touched[],
    updated: [] as Touched[],
  };
  const done = (kind: string, name: string, result: keyof typeof DONE) => {
    out[result].push({ kind, namespace, name });
    ctx.log(`${kind} ${namespace}/${name} ${DONE[result]}`);
  };
  const keys = Object.keys(release.secrets).sort();
  for (const process of Object.keys(release.spec.processes)) {
    const body = secretOf(release, process);
    if (!body) continue;
    const name = body.metadata!.name!;
    done('Secret', name, await writeObject(c, 'Secret', release.app, body, ctx.signal));
    out.secrets.push({ name, keys });
  }
  if (keys.length) ctx.log(`the Secrets hold ${keys.join(', ')}`);
  for (const body of claimsOf(release)) {
    const name = body.metadata!.name!;
    const kind = 'PersistentVolumeClaim';
    done(kind, name, await ensureObject(c, kind, release.app, body, ctx.signal));
    out.claims.push(name);
  }
  for (const [process, p] of Object.entries(release.spec.processes)) {
    const kind = isScheduled(p) ? 'CronJob' : 'Deployment';
    const body = isScheduled(p) ? cronJobOf(release, process) : deploymentOf(release, process);
    const name = body.metadata!.name!;
    done(kind, name, await ensureObject(c, kind, release.app, body, ctx.signal));
    (kind === 'CronJob' ? out.cronJobs : out.deployments).push(name);
  }
  return out;
}

/** The process the Service and route serve (web, else the first with a port). */
function served(spec: Infraspec): string | undefined {
  const chosen = servingProcess(spec.processes);
  return chosen && !isScheduled(chosen[1]) ? chosen[0] : undefined;
}

/** Whether `program` is an executable file on `path`. */
async function onPath(program: string, path: string | undefined): Promise<boolean> {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    try {
      await access(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

const cloudflaredCm = (s: DeployServices) => ({
  namespace: s.kube.cloudflared.namespace,
  name: s.kube.cloudflared.configMap,
});
const cloudflaredDeployment = (s: DeployServices) => ({
  namespace: s.kube.cloudflared.namespace,
  name: s.kube.cloudflared.deployment,
});

/** The rule must go before a catch-all that has no hostname: refuse a config without one. */
function checkCatchAll(text: string, where: string) {
  const last = listIngress(text).at(-1);
  if (!last || last.hostname !== undefined || last.path !== undefined)
    throw new NornError(
      'STEP_FAILED',
      `the cloudflared config in ${where} (key ${CONFIG_KEY}) does not end with a catch-all ingress rule (one without hostname, e.g. "- service: http_status:404"); norn inserts the app's rule before it and will not guess where it goes`,
    );
}

export const createDeployment = forgeStep('create-deployment', {
  async run(ctx, s) {
    const spec = kubeOnly(ctx);
    if (!spec) return skipStep(NOT_EARLY);
    const secrets = await forgeSecrets(ctx, s, spec);
    try {
      return await forgeObjects(ctx, s, forgeRelease(ctx, s, secrets));
    } catch (err) {
      throw scrubbed(err, Object.values(secrets));
    }
  },
});

export const createService = forgeStep('create-service', {
  async run(ctx, s) {
    if (!kubeOnly(ctx)) return skipStep(`${NOT_EARLY}; its services register with its jobs`);
    const release = forgeRelease(ctx, s);
    if (!release.spec.hosts?.internal) return skipStep('no hosts.internal');
    const process = served(release.spec);
    if (!process)
      throw new NornError(
        'SPEC_INVALID',
        `app ${release.app} declares hosts.internal but no long-running process with a port to serve it`,
      );
    const body = serviceOf(release, process)!;
    const namespace = namespaceOf(release.spec);
    const name = body.metadata!.name!;
    const result = await ensureObject(s.kube.connect(), 'Service', release.app, body, ctx.signal);
    ctx.log(`Service ${namespace}/${name} ${result === 'created' ? 'created' : 'already exists'}`);
    return {
      namespace,
      service: name,
      host: `${name}.${namespace}.svc.cluster.local`,
      existed: result === 'existing',
    };
  },
});

export const patchCloudflared = forgeStep('patch-cloudflared', {
  async run(ctx, s) {
    const spec = forgeSpec(ctx);
    if (spec.target === 'nomad') return nomadPatch(ctx, s, spec);
    const hostname = spec.hosts?.external;
    if (!hostname) return skipStep('no hosts.external');
    const svc = await ctx.output('create-service');
    if (!svc)
      throw new NornError(
        'SPEC_INVALID',
        `app ${ctx.run.appId} declares hosts.external (${hostname}) but no hosts.internal: there is no Service for the route to send requests to`,
      );
    const where = cloudflaredCm(s);
    const label = `ConfigMap ${where.namespace}/${where.name}`;
    const rule = { hostname, service: `http://${svc.host}:80` };
    const edited = await editConfigMap(
      s.kube.connect(),
      where,
      (text) => {
        checkCatchAll(text, label);
        return setAppIngress(text, ctx.run.appId, [rule]);
      },
      ctx.signal,
    );
    if (!edited) return skipStep(`cloudflared is not deployed (no ${label})`);
    ctx.log(
      edited.changed ? `${label}: ${hostname} → ${rule.service}` : `${label}: rule already there`,
    );
    return { configMap: `${where.namespace}/${where.name}`, rule, changed: edited.changed };
  },
});

export const createDnsRoute = forgeStep('create-dns-route', {
  async run(ctx, s) {
    const hostname = forgeSpec(ctx).hosts?.external;
    if (!hostname) return skipStep('no hosts.external');
    if (!(await onPath('cloudflared', s.kube.path)))
      return skipStep('the cloudflared CLI is not installed on this worker (not on PATH)');
    const tunnel = s.kube.tunnelName;
    const result = await ctx.exec(['cloudflared', 'tunnel', 'route', 'dns', tunnel, hostname], {
      onLine: ctx.log,
    });
    const said = `${result.stdout}\n${result.tail.join('\n')}`;
    const existed = /already exists/i.test(said);
    if (result.code !== 0 && !existed)
      throw new NornError(
        'COMMAND_FAILED',
        `cloudflared tunnel route dns ${tunnel} ${hostname} exited ${result.code ?? result.signal}: ${result.tail.slice(-5).join(' | ')}`,
      );
    return { tunnel, hostname, existed };
  },
});

async function restartTunnel(ctx: StepContext, s: DeployServices) {
  const where = cloudflaredDeployment(s);
  const done = await restartDeployment(s.kube.connect(), where, {
    signal: ctx.signal,
    timeoutMs: CLOUDFLARED_RESTART_TIMEOUT_MS,
    log: ctx.log,
  });
  if (!done)
    return skipStep(`cloudflared is not deployed (no Deployment ${where.namespace}/${where.name})`);
  return { deployment: `${where.namespace}/${where.name}`, restartedAt: done.restartedAt };
}

export const restartCloudflared = forgeStep('restart-cloudflared', {
  async run(ctx, s) {
    const spec = forgeSpec(ctx);
    const patched = await ctx.output('patch-cloudflared');
    if (!patched) return skipStep('no ingress rule was added');
    if (spec.target === 'nomad') return nomadRestart(ctx, s, spec);
    return restartTunnel(ctx, s);
  },
});

/** What the last forge recorded, else what the spec says it would have made. */
async function recorded(ctx: Pick<StepContext, 'run'>, s: DeployServices) {
  const spec = forgeSpec(ctx);
  const state = await readForgeState(s.db, ctx.run.appId);
  const r: ForgeResources = state.resources;
  const namespace = r.namespace ?? namespaceOf(spec);
  const process = served(spec);
  return {
    spec,
    namespace,
    deployments: r.deployments ?? [],
    cronJobs: r.cronJobs ?? [],
    specObjects: Object.entries(spec.processes).map(([name, p]) => ({
      kind: isScheduled(p) ? ('CronJob' as const) : ('Deployment' as const),
      name: objectName(ctx.run.appId, name),
    })),
    service:
      r.service !== undefined
        ? r.service
        : spec.hosts?.internal && process
          ? objectName(ctx.run.appId, process)
          : null,
    hostname: r.rule?.hostname ?? r.dnsRoute ?? spec.hosts?.external ?? null,
  };
}

export const removeDnsRoute = teardownStep('remove-dns-route', {
  async run(ctx, s) {
    const { hostname } = await recorded(ctx, s);
    if (!hostname) return skipStep('no external host was routed');
    if (!(await onPath('cloudflared', s.kube.path)))
      return {
        hostname,
        removed: false,
        warning:
          'the cloudflared CLI is not installed on this worker: remove the DNS record by hand',
      };
    const argv = ['cloudflared', 'tunnel', 'route', 'dns', '--remove', s.kube.tunnelName, hostname];
    try {
      const result = await ctx.exec(argv, { onLine: ctx.log });
      if (result.code === 0) return { hostname, removed: true };
      return {
        hostname,
        removed: false,
        warning: `${argv.join(' ')} exited ${result.code ?? result.signal}: ${result.tail.slice(-3).join(' | ')}`,
      };
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      return { hostname, removed: false, warning: `${argv.join(' ')}: ${(err as Error).message}` };
    }
  },
});

export const unpatchCloudflared = teardownStep('unpatch-cloudflared', {
  async run(ctx, s) {
    const { hostname, spec } = await recorded(ctx, s);
    if (spec.target === 'nomad') return nomadUnpatch(ctx, s, spec, hostname ?? '');
    const where = cloudflaredCm(s);
    const edited = await editConfigMap(
      s.kube.connect(),
      where,
      (text) => removeAppIngress(text, ctx.run.appId),
      ctx.signal,
    );
    if (!edited)
      return skipStep(
        `cloudflared is not deployed (no ConfigMap ${where.namespace}/${where.name})`,
      );
    return {
      configMap: `${where.namespace}/${where.name}`,
      hostname: hostname ?? '',
      changed: edited.changed,
    };
  },
});

export const restartCloudflaredAfter = teardownStep('restart-cloudflared', {
  async run(ctx, s) {
    const unpatched = await ctx.output('unpatch-cloudflared');
    if (!unpatched?.changed) return skipStep('no ingress rule was removed');
    const spec = forgeSpec(ctx);
    if (spec.target === 'nomad') return nomadRestart(ctx, s, spec);
    return restartTunnel(ctx, s);
  },
});

export const deleteService = teardownStep('delete-service', {
  async run(ctx, s) {
    const { namespace, service, spec } = await recorded(ctx, s);
    if (spec.target === 'nomad')
      return skipStep('the nomad target has no Service: its services go with its jobs');
    if (!service) return skipStep('the app has no Service');
    const result = await deleteObject(
      s.kube.connect(),
      'Service',
      ctx.run.appId,
      service,
      namespace,
      ctx.signal,
    );
    const o = { kind: 'Service', namespace, name: service };
    ctx.log(`Service ${namespace}/${service} ${result === 'deleted' ? 'deleted' : 'already gone'}`);
    return result === 'deleted' ? { deleted: [o], gone: [] } : { deleted: [], gone: [o] };
  },
});

export const deleteDeployment = teardownStep('delete-deployment', {
  async run(ctx, s) {
    const r = await recorded(ctx, s);
    if (r.spec.target === 'nomad') return nomadDeregister(ctx, s, r.spec);
    type Deletable = 'Deployment' | 'CronJob' | 'Secret';
    const objects = new Map<string, { kind: Deletable; name: string }>();
    for (const name of r.deployments)
      objects.set(`Deployment/${name}`, { kind: 'Deployment', name });
    for (const name of r.cronJobs) objects.set(`CronJob/${name}`, { kind: 'CronJob', name });
    for (const o of r.specObjects) objects.set(`${o.kind}/${o.name}`, o);
    // The Secrets the pods read are named as they are; the volumes' claims stay.
    for (const { name } of [...objects.values()])
      objects.set(`Secret/${name}`, { kind: 'Secret', name });
    const out = { deleted: [] as Touched[], gone: [] as Touched[] };
    const c = s.kube.connect();
    for (const { kind, name } of objects.values()) {
      const result = await deleteObject(c, kind, ctx.run.appId, name, r.namespace, ctx.signal);
      out[result === 'deleted' ? 'deleted' : 'gone'].push({ kind, namespace: r.namespace, name });
      ctx.log(
        `${kind} ${r.namespace}/${name} ${result === 'deleted' ? 'deleted' : 'already gone'}`,
      );
    }
    return out;
  },
});
