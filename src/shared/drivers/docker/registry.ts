/**
 * The image registry as norn sees it: where image references point (`host[/namespace]/app:tag`)
 * and whether a tag already exists there, asked over the Registry HTTP API v2 so that a build of
 * an already-pushed commit can be skipped. Handles both kinds of registry auth: Basic (htpasswd,
 * as Debian's docker-registry does it) and Bearer tokens (Docker Hub, GHCR, Harbor, GitLab).
 */
import { NornError } from '../../errors.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryLocation {
  /** `host[:port]`, the part docker uses to pick the registry. */
  host: string;
  /** Path prefix inside the registry (e.g. `acme` in `ghcr.io/acme`), without slashes. */
  namespace: string;
  /** Base URL of the HTTP API. */
  baseUrl: string;
}

// Docker's grammar for repository path components and tags (distribution/reference).
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Parses `NORN_REGISTRY_URL`-style values: `127.0.0.1:5000`, `registry.example.com/team`, or with
 * an explicit scheme. Without a scheme, loopback hosts speak plain HTTP (docker treats them as
 * insecure registries by default) and every other host HTTPS.
 */
export function parseRegistryUrl(raw: string): RegistryLocation {
  const trimmed = raw.trim().replace(/\/+$/, '');
  const scheme = /^(https?):\/\//.exec(trimmed)?.[1];
  const rest = scheme ? trimmed.slice(scheme.length + 3) : trimmed;
  const [host = '', ...path] = rest.split('/');
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(host)) {
    throw new NornError(
      'CONFIG_INVALID',
      `registry URL "${raw}" has no valid host[:port] (e.g. 127.0.0.1:5000)`,
    );
  }
  for (const part of path) {
    if (!COMPONENT.test(part))
      throw new NornError(
        'CONFIG_INVALID',
        `registry URL "${raw}": "${part}" is not a valid path component`,
      );
  }
  const hostname = host.replace(/:\d+$/, '');
  const loopback = hostname === 'localhost' || hostname.startsWith('127.') || hostname === '[::1]';
  return {
    host,
    namespace: path.join('/'),
    baseUrl: `${scheme ?? (loopback ? 'http' : 'https')}://${host}`,
  };
}

/** The repository path inside the registry for an app (`namespace/app`). */
export function repositoryPath(registry: RegistryLocation, app: string): string {
  if (!COMPONENT.test(app)) {
    throw new NornError(
      'SPEC_INVALID',
      `app name "${app}" cannot name an image: use lowercase letters, digits and . _ -`,
    );
  }
  return registry.namespace ? `${registry.namespace}/${app}` : app;
}

export function checkTag(tag: string): string {
  if (!TAG.test(tag))
    throw new NornError(
      'SPEC_INVALID',
      `"${tag}" is not a valid image tag (letters, digits, _ . -, at most 128)`,
    );
  return tag;
}

/** `host:5000/team/web:abc` → `{ name: 'host:5000/team/web', tag: 'abc' }` (the tag defaults to latest). */
export function splitImageRef(ref: string): { name: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref, tag: 'latest' };
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const REQUEST_TIMEOUT_MS = 15_000;

/** `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` → its parameters. */
export function parseChallenge(
  header: string | null,
): { scheme: string; params: Record<string, string> } | null {
  if (!header) return null;
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!match) return null;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of (match[2] ?? '').matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) {
    if (key) params[key.toLowerCase()] = quoted ?? bare ?? '';
  }
  return { scheme: (match[1] ?? '').toLowerCase(), params };
}

export class RegistryClient {
  constructor(
    readonly location: RegistryLocation,
    private readonly credentials?: RegistryCredentials,
  ) {}

  /** True when `repo:tag` has a manifest in the registry (HEAD, so nothing is downloaded). */
  async hasManifest(repo: string, tag: string, signal?: AbortSignal): Promise<boolean> {
    const url = `${this.location.baseUrl}/v2/${repo}/manifests/${encodeURIComponent(checkTag(tag))}`;
    let res = await this.request(url, undefined, signal);
    if (res.status === 401) {
      const authorization = await this.authorize(
        parseChallenge(res.headers.get('www-authenticate')),
        repo,
        signal,
      );
      res = await this.request(url, authorization, signal);
    }
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    if (res.status === 401 || res.status === 403) throw this.refused(res.status);
    throw new NornError(
      'UNAVAILABLE',
      `registry ${this.location.host} answered ${res.status} for ${repo}:${tag}`,
      { retryable: true },
    );
  }

  /** The Authorization header answering a 401 challenge. */
  private async authorize(
    challenge: ReturnType<typeof parseChallenge>,
    repo: string,
    signal?: AbortSignal,
  ): Promise<string> {
    if (challenge?.scheme === 'basic') {
      if (!this.credentials) throw this.refused(401);
      return `Basic ${this.basic()}`;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) {
      throw new NornError(
        'UNAVAILABLE',
        `registry ${this.location.host} asked for an unsupported authentication scheme`,
      );
    }
    const tokenUrl = new URL(challenge.params.realm);
    if (challenge.params.service) tokenUrl.searchParams.set('service', challenge.params.service);
    tokenUrl.searchParams.set('scope', challenge.params.scope ?? `repository:${repo}:pull`);
    const res = await this.request(
      tokenUrl.toString(),
      this.credentials ? `Basic ${this.basic()}` : undefined,
      signal,
      'GET',
    );
    if (res.status === 401 || res.status === 403) throw this.refused(res.status);
    if (!res.ok)
      throw new NornError('UNAVAILABLE', `registry token service answered ${res.status}`, {
        retryable: true,
      });
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new NornError(
        'UNAVAILABLE',
        `registry token service of ${this.location.host} returned no token`,
        { retryable: true },
      );
    return `Bearer ${token}`;
  }

  private basic(): string {
    const { username, password } = this.credentials!;
    return Buffer.from(`${username}:${password}`).toString('base64');
  }

  private refused(status: number): NornError {
    const who = this.credentials
      ? `the credentials of user "${this.credentials.username}"`
      : 'anonymous access (no credentials configured)';
    return new NornError(
      'UNAUTHORIZED',
      `registry ${this.location.host} refused ${who} (HTTP ${status})`,
    );
  }

  private async request(
    url: string,
    authorization: string | undefined,
    signal?: AbortSignal,
    method = 'HEAD',
  ): Promise<Response> {
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const headers: Record<string, string> = { accept: MANIFEST_TYPES };
    if (authorization) headers.authorization = authorization;
    try {
      return await fetch(url, {
        method,
        headers,
        redirect: 'follow',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) {
        throw new NornError(
          'CANCELLED',
          `registry lookup stopped: ${typeof signal.reason === 'string' ? signal.reason : 'aborted'}`,
        );
      }
      const reason = timeout.aborted ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : describe(err);
      throw new NornError(
        'UNAVAILABLE',
        `registry ${this.location.host} cannot be reached: ${reason}`,
        { retryable: true },
      );
    }
  }
}

/** fetch's errors say "fetch failed"; the useful part (ECONNREFUSED…) is in the cause. */
function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
