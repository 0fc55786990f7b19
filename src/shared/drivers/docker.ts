/**
 * The Docker engine driver of norn's `docker` target: build, push, run, replace and probe apps on
 * one engine through dockerode (the engine API over its socket; never the docker CLI). Images go
 * to the configured registry as `${registry}/${app}:${commitSha}`; containers use the host network.
 *
 * Registry credentials are handed to the engine in its auth header and to the registry in HTTP
 * headers only; every message, line and error passes through redaction of the password.
 */
import Docker from 'dockerode';
import { NornError } from '../errors.js';
import { buildImage, type BuildOptions } from './docker/build.js';
import {
  inspectState,
  listContainers,
  logsTail,
  removeImage,
  runContainer,
  stopAndRemove,
  type ContainerState,
  type ContainerSummary,
  type RunOptions,
  type RunResult,
} from './docker/containers.js';
import { engineError } from './docker/engine-errors.js';
import { runToCompletion, type RunToCompletionOptions } from './docker/one-off.js';
import { RegistryClient, checkTag, parseRegistryUrl, repositoryPath } from './docker/registry.js';
import { ensureImage, pushImage, type RegistryAuth } from './docker/transfer.js';

export { httpProbe, type ProbeResult } from './docker/probe.js';
export type {
  BuildOptions,
  ContainerState,
  ContainerSummary,
  RegistryAuth,
  RunOptions,
  RunResult,
  RunToCompletionOptions,
};
export { OWNER_LABEL, type RestartPolicy } from './docker/containers.js';
export { PORT_LABEL, portIsFree } from './docker/host-ports.js';

export const DEFAULT_SOCKET = '/var/run/docker.sock';

export interface DockerDriverOptions {
  socketPath?: string;
  /** Where images go: `host[:port][/namespace]`, e.g. `127.0.0.1:5000`; a scheme may be given. */
  registryUrl: string;
  registryAuth?: { username: string; password: string };
}

export interface DockerDriver {
  /** Resolves when the engine answers; UNAVAILABLE (retryable) otherwise. */
  ping(signal?: AbortSignal): Promise<void>;
  /** `${registry}/${app}:${sha}`. */
  imageRef(app: string, commitSha: string): string;
  /** True when the registry already has `app:tag`, so the build can be skipped. */
  registryHasImage(app: string, tag: string, signal?: AbortSignal): Promise<boolean>;
  build(o: BuildOptions): Promise<{ imageId: string }>;
  push(o: {
    tag: string;
    signal?: AbortSignal;
    onLine?: (line: string) => void;
  }): Promise<{ digest: string }>;
  /** Idempotent by name; never replaces another app's container, never starts on a port in use. */
  run(o: RunOptions): Promise<RunResult>;
  runToCompletion(o: RunToCompletionOptions): Promise<{ exitCode: number; tail: string[] }>;
  list(labels: Record<string, string>): Promise<ContainerSummary[]>;
  /** Idempotent; `timeoutSec` defaults to the container's own stop timeout (see RunOptions). */
  stopAndRemove(idOrName: string, o?: { timeoutSec?: number }): Promise<void>;
  removeImage(tag: string): Promise<void>;
  inspectState(idOrName: string): Promise<ContainerState | null>;
  /** The container's last `lines` lines of output, scrubbed of `redact` (and registry credentials). */
  logsTail(idOrName: string, lines: number, redact?: readonly string[]): Promise<string[]>;
}

const PING_TIMEOUT_MS = 5_000;

export function createDockerDriver(options: DockerDriverOptions): DockerDriver {
  const socketPath = options.socketPath ?? DEFAULT_SOCKET;
  const docker = new Docker({ socketPath });
  const registry = parseRegistryUrl(options.registryUrl);
  const prefix = registry.namespace ? `${registry.host}/${registry.namespace}` : registry.host;
  const auth: RegistryAuth | undefined = options.registryAuth && {
    ...options.registryAuth,
    serveraddress: registry.host,
  };
  const secrets = auth ? [auth.password] : [];
  const client = new RegistryClient(registry, options.registryAuth);

  /** Wraps an engine call so that every failure leaves as a NornError with a scrubbed message. */
  const engine = async <T>(
    what: string,
    call: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      throw engineError(err, what, secrets, signal);
    }
  };

  return {
    async ping(signal) {
      const deadline = AbortSignal.timeout(PING_TIMEOUT_MS);
      try {
        // dockerode's ping takes an abortSignal option; its type declaration does not say so.
        const ping = docker.ping.bind(docker) as unknown as (o: {
          abortSignal: AbortSignal;
        }) => Promise<unknown>;
        await ping({ abortSignal: signal ? AbortSignal.any([signal, deadline]) : deadline });
      } catch (err) {
        if (signal?.aborted) throw engineError(err, 'docker ping', secrets, signal);
        const why = deadline.aborted
          ? `no answer within ${PING_TIMEOUT_MS} ms`
          : ((err as { code?: string }).code ?? (err as Error).message);
        throw new NornError(
          'UNAVAILABLE',
          `no Docker engine answers at ${socketPath} (${why}); start dockerd (script/docker-up)`,
          {
            retryable: true,
          },
        );
      }
    },

    imageRef(app, commitSha) {
      repositoryPath(registry, app); // validates the app name
      return `${prefix}/${app}:${checkTag(commitSha)}`;
    },

    registryHasImage(app, tag, signal) {
      return client.hasManifest(repositoryPath(registry, app), tag, signal);
    },

    build: (o) => buildImage(docker, o, secrets),

    async push(o) {
      if (!o.tag.startsWith(`${prefix}/`)) {
        throw new NornError(
          'BAD_REQUEST',
          `${o.tag} is not an image of the configured registry ${prefix}`,
        );
      }
      return pushImage(docker, o.tag, auth, { ...o, registryHost: registry.host });
    },

    async run(o) {
      const imageId = await ensureImage(docker, o.image, auth, { signal: o.signal });
      return runContainer(docker, imageId, o, secrets);
    },

    async runToCompletion(o) {
      await ensureImage(docker, o.image, auth, { signal: o.signal, onLine: o.onLine });
      return runToCompletion(docker, o, secrets);
    },

    list: (labels) => engine('listing containers', () => listContainers(docker, labels)),
    stopAndRemove: (idOrName, o) =>
      engine(`removing container ${idOrName}`, () =>
        stopAndRemove(docker, idOrName, o?.timeoutSec),
      ),
    removeImage: (tag) => engine(`removing image ${tag}`, () => removeImage(docker, tag)),
    inspectState: (idOrName) =>
      engine(`inspecting container ${idOrName}`, () => inspectState(docker, idOrName)),
    logsTail: (idOrName, lines, redact = []) =>
      engine(`reading the output of container ${idOrName}`, () =>
        logsTail(docker, idOrName, lines, [...secrets, ...redact]),
      ),
  };
}
