/**
 * The forge pipeline (an app's Kubernetes objects and routing, provisioned once) and the teardown
 * pipeline (all of it taken away again; PVCs stay), both in the app's scope (`app:<id>`), so they
 * queue behind and ahead of its deploys. Their hooks move the app's forge state (state.ts). Bump
 * `version` whenever steps change: runs execute the version they started with.
 */
import { definePipeline } from '../../queues/pipeline.js';
import type { DeployServices } from '../deploy/types.js';
import { forgeHooks, teardownHooks } from './state.js';
import {
  createDeployment,
  createDnsRoute,
  createService,
  deleteDeployment,
  deleteService,
  patchCloudflared,
  removeDnsRoute,
  restartCloudflared,
  restartCloudflaredAfter,
  unpatchCloudflared,
} from './steps.js';
import { FORGE_STEPS, TEARDOWN_STEPS } from './types.js';

const forgeSteps = [
  createDeployment,
  createService,
  patchCloudflared,
  createDnsRoute,
  restartCloudflared,
] as const;
const teardownSteps = [
  removeDnsRoute,
  unpatchCloudflared,
  restartCloudflaredAfter,
  deleteService,
  deleteDeployment,
] as const;

// The contract of step names (events, CLI, API) and the definitions must agree.
if (forgeSteps.map((s) => s.name).join() !== FORGE_STEPS.join())
  throw new Error('forge steps out of order');
if (teardownSteps.map((s) => s.name).join() !== TEARDOWN_STEPS.join())
  throw new Error('teardown steps out of order');

export const forgePipeline = definePipeline<DeployServices>()({
  name: 'forge',
  version: '1',
  events: 'forge',
  scope: ({ appId }) => `app:${appId}`,
  policy: 'queue',
  steps: forgeSteps,
  hooks: forgeHooks,
});

export const teardownPipeline = definePipeline<DeployServices>()({
  name: 'teardown',
  version: '1',
  events: 'teardown',
  scope: ({ appId }) => `app:${appId}`,
  policy: 'queue',
  steps: teardownSteps,
  hooks: teardownHooks,
});
