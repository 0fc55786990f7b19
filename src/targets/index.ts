/**
 * The targets a worker deploys to, built once from its engines; steps pick one per spec with
 * `targetFor(registry, spec)` (types.ts): docker, kubernetes and nomad, behind one interface and
 * the same contract tests (test/support/targets).
 */
import { createDockerTarget, type DockerTargetDeps } from './docker.js';
import { createKubernetesTarget } from './kubernetes.js';
import { createKubeConnection, loadKubeConfig, type KubeEnv } from './kubernetes/connection.js';
import { connectNomad, createNomadTarget } from './nomad.js';
import type { NomadEnv } from './nomad/client.js';
import type { TargetRegistry } from './types.js';

export type { CronScheduler } from './docker/schedules.js';
export * from './types.js';

export interface TargetDeps {
  docker: DockerTargetDeps;
  /**
   * Where the kubernetes target finds its cluster (KUBECONFIG, HOME, NORN_KUBE_CONTEXT, the
   * in-cluster variables). Read when a kubernetes app first needs it: a worker without a
   * config fails those steps UNAVAILABLE, naming KUBECONFIG, and runs docker apps as before.
   */
  kubernetes?: KubeEnv;
  /**
   * Where the nomad target finds Nomad (NORN_NOMAD_ADDR …) and Consul; read when a nomad app
   * first needs it, as for kubernetes: a worker without NORN_NOMAD_ADDR fails those steps
   * UNAVAILABLE.
   */
  nomad?: NomadEnv;
}

export function createTargets(deps: TargetDeps): TargetRegistry {
  const kube = deps.kubernetes ?? {};
  return {
    docker: createDockerTarget(deps.docker),
    kubernetes: createKubernetesTarget({
      connect: () => createKubeConnection(loadKubeConfig(kube)),
    }),
    nomad: createNomadTarget({ connect: () => connectNomad(deps.nomad ?? {}) }),
  };
}
