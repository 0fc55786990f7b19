/**
 * The targets a worker deploys to, built once from its engines; steps pick one per spec with
 * `targetFor(registry, spec)` (types.ts). Only docker exists today; kubernetes and nomad come
 * next, behind the same interface and the same contract tests (test/support/targets).
 */
import { createDockerTarget, type DockerTargetDeps } from './docker.js';
import type { TargetRegistry } from './types.js';

export type { CronScheduler } from './docker/schedules.js';
export * from './types.js';

export interface TargetDeps {
  docker: DockerTargetDeps;
}

export function createTargets(deps: TargetDeps): TargetRegistry {
  return { docker: createDockerTarget(deps.docker) };
}
