/** Builds the deploy steps' services from config: the one place that picks concrete drivers. */
import type { Config } from '../../shared/config.js';
import type { Db } from '../../shared/db.js';
import { createCaddyDriver } from '../../shared/drivers/caddy.js';
import { createDockerDriver } from '../../shared/drivers/docker.js';
import type { Logger } from '../../shared/logger.js';
import { keysFromEnv } from '../../shared/secrets/sops.js';
import { createTargets, type CronScheduler } from '../../targets/index.js';
import {
  createKubeConnection,
  loadKubeConfig,
  type KubeConnection,
  type KubeEnv,
} from '../../targets/kubernetes/connection.js';
import { createAlerter } from '../../shared/alerts.js';
import { DriftStateStore } from '../../shared/store/drift-state.js';
import { PlanArtifactStore } from '../../shared/store/plan-artifacts.js';
import { StackStore } from '../../shared/store/stacks.js';
import { ReleaseStore } from './releases.js';
import { SnapshotStore } from './snapshot-store.js';
import type { DeployServices } from './types.js';

export interface DeployServiceDeps {
  config: Config;
  /** Environment for SOPS keys (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, NORN_SOPS_PGP_KEY…) and HOME. */
  env: Record<string, string | undefined>;
  db: Db;
  log: Logger;
  cron: CronScheduler;
}

export function createDeployServices({
  config,
  env,
  db,
  log,
  cron,
}: DeployServiceDeps): DeployServices {
  const d = config.deploy;
  let keys: ReturnType<typeof keysFromEnv> | undefined;
  let kube: KubeConnection | undefined;
  const kubeEnv: KubeEnv = {
    KUBECONFIG: env.KUBECONFIG,
    HOME: env.HOME,
    KUBERNETES_SERVICE_HOST: env.KUBERNETES_SERVICE_HOST,
    NORN_KUBE_CONTEXT: d.kubeContext,
  };
  const docker = createDockerDriver({
    socketPath: d.dockerSocket,
    registryUrl: d.registryUrl,
    registryAuth: d.registryAuth,
  });
  return {
    db,
    log,
    workDir: d.workDir,
    git: { credentials: d.gitCredentials, sshKey: d.gitSshKey },
    docker,
    // The build engine is the docker target's engine too: one host builds and runs.
    targets: createTargets({
      docker: {
        docker,
        cron,
        pollMs: d.healthPollMs,
        proxy: createCaddyDriver({ adminUrl: d.ingress.caddyAdminUrl }),
        drainMs: d.ingress.drainMs,
        replicaPorts: d.ingress.replicaPorts,
      },
      kubernetes: kubeEnv,
      nomad: d.nomad,
    }),
    registryUrl: d.registryUrl,
    // Read once per process, when a deploy first needs them (a missing key file fails that step, not start-up).
    sopsKeys: () => (keys ??= keysFromEnv(env, env.HOME)),
    appDatabaseUrl: d.appDatabaseUrl,
    snapshotDir: d.snapshotDir,
    cloudflared: { configPath: d.cloudflaredConfig, restartArgv: d.cloudflaredRestart },
    releases: new ReleaseStore(db),
    snapshots: new SnapshotStore(db),
    kube: {
      connect: () => (kube ??= createKubeConnection(loadKubeConfig(kubeEnv))),
      cloudflared: d.kubeCloudflared,
      tunnelName: d.tunnelName,
      path: env.PATH,
    },
    nomad: { namespace: d.nomad.NORN_NOMAD_NAMESPACE ?? 'default' },
    gitops: {
      stacks: new StackStore(db),
      plans: new PlanArtifactStore(db),
      drift: new DriftStateStore(db),
      tofuBin: config.gitops.tofuBin,
      env,
      publicUrl: config.gitops.publicUrl,
      alerts: createAlerter({ ...config.alerts, db, log }),
    },
  };
}
