/** The forge and teardown pipelines' step names and output schemas (../shared/DESIGN.md). */
import { z } from 'zod';
import { stepsOf } from '../../queues/pipeline.js';
import type { DeployServices } from '../deploy/types.js';

export const FORGE_STEPS = [
  'create-deployment',
  'create-service',
  'patch-cloudflared',
  'create-dns-route',
  'restart-cloudflared',
] as const;

export const TEARDOWN_STEPS = [
  'remove-dns-route',
  'unpatch-cloudflared',
  'restart-cloudflared',
  'delete-service',
  'delete-deployment',
] as const;

const names = z.array(z.string());

/** An object as `<Kind> <namespace>/<name>`, and what the step found or did. */
const Touched = z.object({ kind: z.string(), namespace: z.string(), name: z.string() });

export const CreateDeploymentOutput = z.object({
  namespace: z.string(),
  image: z.string(),
  /** Deployments (long-running processes) and CronJobs (scheduled ones) of the app. */
  deployments: names,
  cronJobs: names,
  /** The Secrets the pods read by envFrom, with their KEYS (never a value). */
  secrets: z.array(z.object({ name: z.string(), keys: names })),
  /** The PersistentVolumeClaims of the app's volumes (teardown never deletes them). */
  claims: names,
  created: z.array(Touched),
  existing: z.array(Touched),
  /** Secrets written over with the values of now. */
  updated: z.array(Touched),
});
export const CreateServiceOutput = z.object({
  namespace: z.string(),
  service: z.string(),
  /** `<svc>.<ns>.svc.cluster.local`: what the cloudflared rule sends requests to (port 80). */
  host: z.string(),
  existed: z.boolean(),
});
const Rule = z.object({ hostname: z.string(), service: z.string(), path: z.string().optional() });
export const PatchCloudflaredOutput = z.object({
  /** Where the rules went: `<ns>/<name>` of the ConfigMap, or (nomad) the config file's path. */
  configMap: z.string(),
  rule: Rule,
  /** nomad: every rule of the app (each endpoint and hosts.external). */
  rules: z.array(Rule).optional(),
  changed: z.boolean(),
});
export const DnsRouteOutput = z.object({
  tunnel: z.string(),
  hostname: z.string(),
  existed: z.boolean(),
});
export const RestartOutput = z.object({ deployment: z.string(), restartedAt: z.string() });

export const FORGE_OUTPUTS = {
  'create-deployment': CreateDeploymentOutput,
  'create-service': CreateServiceOutput,
  'patch-cloudflared': PatchCloudflaredOutput,
  'create-dns-route': DnsRouteOutput,
  'restart-cloudflared': RestartOutput,
};

export const RemoveDnsRouteOutput = z.object({
  hostname: z.string(),
  removed: z.boolean(),
  /** Why the route may still be there (best effort: the step completes anyway). */
  warning: z.string().optional(),
});
export const UnpatchOutput = z.object({
  configMap: z.string(),
  hostname: z.string(),
  changed: z.boolean(),
});
export const DeleteOutput = z.object({
  deleted: z.array(Touched),
  gone: z.array(Touched),
});

export const TEARDOWN_OUTPUTS = {
  'remove-dns-route': RemoveDnsRouteOutput,
  'unpatch-cloudflared': UnpatchOutput,
  'restart-cloudflared': RestartOutput,
  'delete-service': DeleteOutput,
  'delete-deployment': DeleteOutput,
};

export const forgeStep = stepsOf<DeployServices>()(FORGE_STEPS, FORGE_OUTPUTS);
export const teardownStep = stepsOf<DeployServices>()(TEARDOWN_STEPS, TEARDOWN_OUTPUTS);

/**
 * What a forge made, recorded in forge_state.resources by its onSucceed hook and what teardown
 * removes: the objects, the ingress rule and the DNS route.
 */
export const ForgeResources = z.object({
  namespace: z.string().optional(),
  deployments: names.optional(),
  cronJobs: names.optional(),
  service: z.string().nullable().optional(),
  rule: z.object({ hostname: z.string(), service: z.string() }).nullable().optional(),
  dnsRoute: z.string().nullable().optional(),
});
export type ForgeResources = z.output<typeof ForgeResources>;
