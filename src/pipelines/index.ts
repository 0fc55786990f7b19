/**
 * The pipelines norn ships. The deploy, forge and teardown pipelines (../shared/DESIGN.md) are
 * registered here as their steps are built; until then POST /api/apps/:id/deploy answers 422
 * "no pipeline named deploy is registered" instead of pretending.
 */
import type { Config } from '../shared/config.js';
import type { PipelineDefinition } from '../queues/pipeline.js';

export type StepServices = Record<string, never>;

export function builtinPipelines(): PipelineDefinition<unknown>[] {
  return [];
}

export function createStepServices(_config: Config, _env: NodeJS.ProcessEnv): StepServices {
  return {};
}
