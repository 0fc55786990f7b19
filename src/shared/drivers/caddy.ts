/**
 * The Docker host's ingress proxy: Caddy (Debian's package, started by script/docker-up with
 * `caddy run --resume`), configured only through its admin API (JSON over HTTP on loopback). Each
 * routed process is one Caddy server, `norn.<app>.<process>`, listening on the process's declared
 * port and reverse-proxying to its replicas' ports. Caddy autosaves every change it accepts and
 * `--resume` loads that back, so the routes survive a restart of the proxy.
 *
 * Writes are whole-server upserts (`POST /config/apps/http/servers/<id>` sets or replaces that key
 * only), so a step re-run after a kill converges, and two workers changing different apps never
 * overwrite each other. Caddy applies each change by reloading its http app with its listeners
 * kept open: in-flight requests finish on the old config.
 */
import { NornError } from '../errors.js';

export const DEFAULT_CADDY_ADMIN_URL = 'http://127.0.0.1:2019';

/** One process's route: the port it is served on, and the replica ports requests go to. */
export interface ProxyRoute {
  listenPort: number;
  upstreams: number[];
}

export interface IngressProxy {
  /** Where the admin API is, for messages. */
  readonly adminUrl: string;
  /** Creates or replaces the route `id`. */
  setRoute(id: string, route: ProxyRoute, signal?: AbortSignal): Promise<void>;
  /** The route `id` as the proxy has it now, or undefined. */
  route(id: string, signal?: AbortSignal): Promise<ProxyRoute | undefined>;
  /** Every route the proxy has, by id. */
  routes(signal?: AbortSignal): Promise<Record<string, ProxyRoute>>;
  /** The ids of the routes whose id starts with `prefix`. */
  routeIds(prefix: string, signal?: AbortSignal): Promise<string[]>;
  /** Removes the route `id`; a missing one is fine. */
  removeRoute(id: string, signal?: AbortSignal): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 15_000;
const SERVERS = '/config/apps/http/servers';

/**
 * How long Caddy keeps trying the other upstreams when one cannot be dialled (a replica that
 * crashed between two deploys): requests wait this long for a live one instead of failing.
 */
const TRY_DURATION = '5s';
const TRY_INTERVAL = '100ms';

const upstreamAddress = (port: number) => `127.0.0.1:${port}`;

/** The Caddy JSON of one route's server. */
export function serverConfig(id: string, route: ProxyRoute): Record<string, unknown> {
  return {
    '@id': id,
    listen: [`:${route.listenPort}`],
    // Plain HTTP on a port: cloudflared (or whatever is in front) terminates TLS.
    automatic_https: { disable: true },
    routes: [
      {
        handle: [
          {
            handler: 'reverse_proxy',
            upstreams: route.upstreams.map((p) => ({ dial: upstreamAddress(p) })),
            load_balancing: {
              selection_policy: { policy: 'round_robin' },
              try_duration: TRY_DURATION,
              try_interval: TRY_INTERVAL,
            },
          },
        ],
      },
    ],
  };
}

interface ServerJson {
  listen?: string[];
  routes?: Array<{ handle?: Array<{ handler?: string; upstreams?: Array<{ dial?: string }> }> }>;
}

/** A server's JSON back as a route (undefined when it is not one norn wrote). */
export function routeOf(server: ServerJson | null | undefined): ProxyRoute | undefined {
  const listen = /:(\d+)$/.exec(server?.listen?.[0] ?? '');
  const proxy = server?.routes?.[0]?.handle?.find((h) => h.handler === 'reverse_proxy');
  if (!listen || !proxy) return undefined;
  const upstreams = (proxy.upstreams ?? []).map((u) => Number(/:(\d+)$/.exec(u.dial ?? '')?.[1]));
  return { listenPort: Number(listen[1]), upstreams: upstreams.filter((p) => p > 0) };
}

const unreachable = (adminUrl: string, why: string, cause?: unknown) =>
  new NornError(
    'UNAVAILABLE',
    `the Docker host's ingress proxy (Caddy) is not answering at ${adminUrl} (${why}); run script/docker-up`,
    { retryable: true, cause, details: { adminUrl } },
  );

/** Connection failures worth another try: Caddy closed or reset the connection mid-call. */
const TRANSIENT = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);
const CONNECTION_RETRIES = 5;

export function createCaddyDriver(o: { adminUrl?: string } = {}): IngressProxy {
  const adminUrl = (o.adminUrl ?? DEFAULT_CADDY_ADMIN_URL).replace(/\/+$/, '');

  /**
   * One admin call; the parsed body (null when empty), or the status and Caddy's error text.
   * Every call is idempotent (reads, whole-server upserts, deletes), so a connection Caddy closed
   * or reset under it (it restarts its servers on every config change, and many deploys change
   * routes at once) is retried a few times before Caddy counts as unreachable.
   */
  async function call(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; json: unknown; error: string | undefined }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await callOnce(method, path, body, signal);
      } catch (err) {
        const code = (err as { cause?: { cause?: { code?: string } } }).cause?.cause?.code;
        if (attempt >= CONNECTION_RETRIES || !code || !TRANSIENT.has(code) || signal?.aborted)
          throw err;
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  async function callOnce(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; json: unknown; error: string | undefined }> {
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(`${adminUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw new NornError('CANCELLED', 'cancelled', { cause: err });
      const cause = (err as { cause?: { code?: string } }).cause;
      throw unreachable(
        adminUrl,
        timeout.aborted ? 'no answer' : (cause?.code ?? String(err)),
        err,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null; // Caddy's errors are JSON; anything else is kept as text below
    }
    const error = res.ok ? undefined : ((json as { error?: string } | null)?.error ?? text);
    return { status: res.status, json, error };
  }

  /** Caddy's error for a change it refused, as a NornError. */
  const refused = (what: string, error: string | undefined) =>
    /address already in use/.test(error ?? '')
      ? new NornError(
          'CONFLICT',
          `the ingress proxy cannot ${what}: its port is already in use on the Docker host (${error})`,
        )
      : new NornError('UNAVAILABLE', `the ingress proxy refused to ${what}: ${error}`, {
          retryable: true,
        });

  /** A fresh Caddy has no config at all: give it an empty http app (PUT fails if one exists). */
  async function ensureHttpApp(signal?: AbortSignal): Promise<void> {
    const found = await call('GET', SERVERS, undefined, signal);
    if (found.status === 200 && found.json !== null) return;
    const root = await call('GET', '/config/', undefined, signal);
    const apps = (root.json as { apps?: { http?: unknown } } | null)?.apps;
    const [path, body] = !apps
      ? ['/config/apps', { http: { servers: {} } }]
      : !apps.http
        ? ['/config/apps/http', { servers: {} }]
        : ['/config/apps/http/servers', {}];
    const made = await call('PUT', path, body, signal);
    // Another worker made it in between: that is the outcome we want.
    if (made.status >= 300 && !/already exists/.test(made.error ?? ''))
      throw refused('start its http app', made.error);
  }

  return {
    adminUrl,

    async setRoute(id, route, signal) {
      const put = () => call('POST', `${SERVERS}/${id}`, serverConfig(id, route), signal);
      let res = await put();
      if (res.status >= 300 && /invalid traversal path/.test(res.error ?? '')) {
        await ensureHttpApp(signal);
        res = await put();
      }
      if (res.status >= 300)
        throw refused(`route port ${route.listenPort} to ${route.upstreams.join(', ')}`, res.error);
    },

    async route(id, signal) {
      const res = await call('GET', `${SERVERS}/${id}`, undefined, signal);
      if (res.status >= 300) return undefined; // no http app yet: no route
      return routeOf(res.json as ServerJson | null);
    },

    async routes(signal) {
      const res = await call('GET', SERVERS, undefined, signal);
      if (res.status >= 300 || res.json === null) return {};
      const out: Record<string, ProxyRoute> = {};
      for (const [id, server] of Object.entries(res.json as Record<string, ServerJson>)) {
        const route = routeOf(server);
        if (route) out[id] = route;
      }
      return out;
    },

    async routeIds(prefix, signal) {
      const res = await call('GET', SERVERS, undefined, signal);
      if (res.status >= 300 || res.json === null) return [];
      return Object.keys(res.json as Record<string, unknown>).filter((k) => k.startsWith(prefix));
    },

    async removeRoute(id, signal) {
      const res = await call('DELETE', `${SERVERS}/${id}`, undefined, signal);
      if (res.status < 300) return;
      // Nothing to remove (no such key, or no http app at all) is success.
      if (/not found|nonexistent|invalid traversal path/i.test(res.error ?? '')) return;
      throw refused(`remove route ${id}`, res.error);
    },
  };
}
