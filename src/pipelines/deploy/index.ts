/**
 * The deploy pipeline: git ref → image → tested → snapshot → migrated → running → healthy →
 * routed → cleaned up (../shared/DESIGN.md). Bump `version` whenever steps change: runs execute
 * the version they started with.
 */
import { definePipeline } from '../../queues/pipeline.js';
import { build } from './steps/build.js';
import { cleanup } from './steps/cleanup.js';
import { clone } from './steps/clone.js';
import { forge } from './steps/forge.js';
import { healthy } from './steps/healthy.js';
import { migrate } from './steps/migrate.js';
import { snapshot } from './steps/snapshot.js';
import { submit } from './steps/submit.js';
import { test } from './steps/test.js';
import { DEPLOY_STEPS, type DeployServices } from './types.js';

const steps = [clone, build, test, snapshot, migrate, submit, healthy, forge, cleanup] as const;

// The contract of step names (events, CLI, API) and the definition must agree.
if (steps.map((s) => s.name).join() !== DEPLOY_STEPS.join())
  throw new Error('deploy steps out of order');

export const deployPipeline = definePipeline<DeployServices>()({
  name: 'deploy',
  version: '1',
  events: 'deploy',
  finalizer: 'cleanup',
  steps,
  summarize: ({ build: built }) => (built ? { imageTag: built.imageRef } : {}),
});
