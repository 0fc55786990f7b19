/**
 * How the kubernetes target reaches its cluster. The config is found as kubectl finds it:
 * `KUBECONFIG` (a path list, merged), else `~/.kube/config`, else the in-cluster service account;
 * `NORN_KUBE_CONTEXT` picks a context. TLS (the cluster's CA), bearer tokens and client
 * certificates are @kubernetes/client-node's business. Every API call goes through `call`, which
 * retries what a cluster answers in passing (429, 5xx, a reset connection) with p-retry and turns
 * a cluster that cannot be reached into UNAVAILABLE naming its URL and the reason.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import pRetry, { AbortError } from 'p-retry';
import { NornError, isNornError } from '../../shared/errors.js';

export interface KubeEnv {
  KUBECONFIG?: string | undefined;
  HOME?: string | undefined;
  KUBERNETES_SERVICE_HOST?: string | undefined;
  /** The context to use instead of the config's current-context. */
  NORN_KUBE_CONTEXT?: string | undefined;
}

export interface KubeRetry {
  retries: number;
  minTimeoutMs: number;
}

export interface KubeConnection {
  kc: k8s.KubeConfig;
  /** The cluster's API server URL (what errors name). */
  server: string;
  context: string;
  apps: k8s.AppsV1Api;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  watch: k8s.Watch;
  /** Runs one API request: transient failures retried, unreachable → UNAVAILABLE. */
  call<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Where a config comes from, in kubectl's order; undefined when there is none. */
function configSource(env: KubeEnv): string | undefined {
  if (env.KUBECONFIG?.split(delimiter).some(Boolean)) return 'KUBECONFIG';
  if (env.HOME && existsSync(join(env.HOME, '.kube', 'config'))) return '~/.kube/config';
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) return 'in-cluster';
  return undefined;
}

/** The kube config, loaded as kubectl loads it, with NORN_KUBE_CONTEXT applied. */
export function loadKubeConfig(env: KubeEnv): k8s.KubeConfig {
  const source = configSource(env);
  if (!source)
    throw new NornError(
      'UNAVAILABLE',
      'the kubernetes target needs a cluster config, and this worker has none: set KUBECONFIG, or provide ~/.kube/config, or run in a cluster with a service account',
    );
  const kc = new k8s.KubeConfig();
  try {
    if (source === 'KUBECONFIG') {
      const [first, ...rest] = env.KUBECONFIG!.split(delimiter).filter(Boolean);
      kc.loadFromFile(first!);
      for (const file of rest) {
        const more = new k8s.KubeConfig();
        more.loadFromFile(file);
        kc.mergeConfig(more, true);
      }
    } else if (source === '~/.kube/config') {
      kc.loadFromFile(join(env.HOME!, '.kube', 'config'));
    } else {
      kc.loadFromCluster();
    }
  } catch (err) {
    throw new NornError(
      'UNAVAILABLE',
      `the kubernetes config from ${source} cannot be read: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const wanted = env.NORN_KUBE_CONTEXT;
  if (wanted) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(wanted))
      throw new NornError(
        'UNAVAILABLE',
        `NORN_KUBE_CONTEXT names context ${wanted}, which the kubernetes config from ${source} does not have (it has: ${names.join(', ') || 'none'})`,
      );
    kc.setCurrentContext(wanted);
  }
  if (!kc.getCurrentCluster())
    throw new NornError(
      'UNAVAILABLE',
      `the kubernetes config from ${source} has no cluster for context ${kc.getCurrentContext() || '(none)'}`,
    );
  return kc;
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN']);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CERT_HAS_EXPIRED',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The network error code of a failed request (node-fetch's FetchError carries it). */
function netCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errno?: unknown; cause?: { code?: unknown } } | undefined;
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.errno === 'string') return e.errno;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return undefined;
}

/** Whether the API answered in passing (429, 5xx) or the connection broke mid-way. */
export function isTransient(err: unknown): boolean {
  if (err instanceof k8s.ApiException) return err.code === 429 || err.code >= 500;
  const code = netCode(err);
  return code !== undefined && (TRANSIENT_CODES.has(code) || UNREACHABLE_CODES.has(code));
}

/** What the API said, in one line: the Status message when there is one. */
export function apiMessage(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    let body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // not a Status: keep the text
      }
    }
    const message = (body as { message?: unknown } | undefined)?.message;
    return `HTTP ${err.code}: ${typeof message === 'string' ? message : String(err.body).slice(0, 300)}`;
  }
  return (err as Error)?.message ?? String(err);
}

export function createKubeConnection(
  kc: k8s.KubeConfig,
  retry: KubeRetry = { retries: 4, minTimeoutMs: 200 },
): KubeConnection {
  const server = kc.getCurrentCluster()?.server ?? '(no server)';
  return {
    kc,
    server,
    context: kc.getCurrentContext(),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    watch: new k8s.Watch(kc),
    async call(what, fn, signal) {
      try {
        return await pRetry(
          async () => {
            try {
              return await fn();
            } catch (err) {
              if (isTransient(err)) throw err;
              throw new AbortError(err as Error);
            }
          },
          {
            retries: retry.retries,
            minTimeout: retry.minTimeoutMs,
            factor: 2,
            randomize: true,
            signal,
          },
        );
      } catch (err) {
        if (signal?.aborted)
          throw new NornError('CANCELLED', `${what} on ${server} was cancelled`, { cause: err });
        if (isNornError(err)) throw err;
        // A request that never got an answer (node-fetch's FetchError: refused, reset, TLS…).
        const unanswered =
          !(err instanceof k8s.ApiException) &&
          (netCode(err) !== undefined || (err as Error)?.name === 'FetchError');
        if (unanswered)
          throw new NornError(
            'UNAVAILABLE',
            `the kubernetes cluster at ${server} cannot be reached (${what}): ${apiMessage(err)}`,
            { cause: err, retryable: true, details: { server } },
          );
        if (err instanceof k8s.ApiException && isTransient(err))
          throw new NornError(
            'UNAVAILABLE',
            `the kubernetes cluster at ${server} kept failing ${what}: ${apiMessage(err)}`,
            { cause: err, retryable: true, details: { server, status: err.code } },
          );
        throw err;
      }
    },
  };
}

/** The HTTP status of a failed API call (undefined when it was not an API answer). */
export const statusOf = (err: unknown): number | undefined =>
  err instanceof k8s.ApiException ? err.code : undefined;
