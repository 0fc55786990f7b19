/**
 * Where the deploy's forge step (and its compensation) writes an app's cloudflared ingress rules,
 * by target: the config file NORN_CLOUDFLARED_CONFIG on the docker host (restarted with
 * NORN_CLOUDFLARED_RESTART), or the cloudflared ConfigMap in the cluster (key config.yaml,
 * NORN_CLOUDFLARED_NAMESPACE/CONFIGMAP), restarted as `kubectl rollout restart` does it
 * (NORN_CLOUDFLARED_DEPLOYMENT). The edits are the same pure text edits either way
 * (src/shared/drivers/cloudflared.ts): other apps' rules, the operator's and the catch-all stay.
 */
import { readFile } from 'node:fs/promises';
import {
  EMPTY_INGRESS_CONFIG,
  restartTunnel,
  updateIngressFile,
  type IngressEdit,
} from '../../shared/drivers/cloudflared.js';
import type { Infraspec } from '../../shared/spec/infraspec.js';
import {
  CLOUDFLARED_RESTART_TIMEOUT_MS,
  editConfigMap,
  readConfigText,
  restartDeployment,
} from '../forge/cluster.js';
import type { DeployServices } from './types.js';

export interface Ingress {
  /** Where the rules live, for messages: the file's path, or `ConfigMap <ns>/<name>`. */
  where: string;
  /** The config as it is now; undefined when there is none (cloudflared is not deployed). */
  read(signal: AbortSignal): Promise<string | undefined>;
  /** Applies `edit`; undefined when there is no config to edit. */
  edit(
    edit: (text: string) => IngressEdit,
    signal: AbortSignal,
  ): Promise<{ changed: boolean } | undefined>;
  /** Restarts the tunnel so it reads the rules; `note` says what it did. */
  restart(o: {
    signal: AbortSignal;
    log: (line: string) => void;
  }): Promise<{ restarted: boolean; note: string }>;
}

/** The app's ingress on its target, or why there is none to write (the step is skipped). */
export function ingressFor(s: DeployServices, spec: Infraspec): Ingress | { skip: string } {
  if (spec.target === 'kubernetes') return configMapIngress(s);
  const path = s.cloudflared.configPath;
  if (!path) return { skip: 'endpoints declared but NORN_CLOUDFLARED_CONFIG is not set' };
  return {
    where: path,
    read: async () =>
      readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return EMPTY_INGRESS_CONFIG;
        throw err;
      }),
    edit: (edit, signal) => updateIngressFile(path, edit, { signal }),
    async restart({ signal, log }) {
      const result = await restartTunnel(s.cloudflared.restartArgv, { signal, onLine: log });
      return result.skipped
        ? { restarted: false, note: `tunnel not restarted: ${result.skipped}` }
        : { restarted: true, note: 'tunnel restarted' };
    },
  };
}

function configMapIngress(s: DeployServices): Ingress {
  const { namespace, configMap, deployment } = s.kube.cloudflared;
  const cm = { namespace, name: configMap };
  return {
    where: `ConfigMap ${namespace}/${configMap}`,
    read: (signal) => readConfigText(s.kube.connect(), cm, signal),
    edit: (edit, signal) => editConfigMap(s.kube.connect(), cm, edit, signal),
    async restart({ signal, log }) {
      const done = await restartDeployment(
        s.kube.connect(),
        { namespace, name: deployment },
        { signal, timeoutMs: CLOUDFLARED_RESTART_TIMEOUT_MS, log },
      );
      return done
        ? { restarted: true, note: `tunnel restarted (Deployment ${namespace}/${deployment})` }
        : {
            restarted: false,
            note: `tunnel not restarted: no Deployment ${namespace}/${deployment}`,
          };
    },
  };
}
