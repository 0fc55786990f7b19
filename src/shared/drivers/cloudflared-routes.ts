/**
 * Routes for cloudflared ingress: what a norn app asks the tunnel to serve, validated the way
 * cloudflared validates ingress rules (ingress/ingress.go: no port in a host name, a wildcard only
 * as a leading `*.`, a service with a scheme and host but no path), plus cloudflared's own
 * matching rules, which decide where a new rule must go so that nothing earlier hides it.
 */
import { NornError } from '../errors.js';
import { hostNameProblem, normHost } from '../spec/hostnames.js';

export { normHost };

export interface AppRoute {
  hostname: string;
  /** e.g. http://127.0.0.1:3000 */
  service: string;
  /** A regular expression matched against the request path, e.g. `^/v1`. */
  path?: string;
}

/** The part of an ingress rule that decides which requests it takes. */
export interface RuleMatch {
  hostname?: string;
  path?: string;
}

/** Services cloudflared accepts: scheme://host[:port] with no path, unix sockets, fixed statuses. */
const SERVICE = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+|unix:\/\S+|http_status:\d{3}|hello_world)$/i;

/** cloudflared wants exactly one rule that matches everything, and it must be the last one. */
export const isCatchAll = (r: RuleMatch) => !r.path && (!r.hostname || r.hostname === '*');

/** Whether `r` and `route` claim exactly the same requests (same host name and path). */
export const sameTarget = (r: RuleMatch, route: AppRoute) =>
  normHost(r.hostname) === route.hostname && (r.path ?? '') === (route.path ?? '');

/**
 * Whether every request `route` matches is taken by `r` first when `r` comes earlier. Mirrors
 * cloudflared's matchHost: `*.example.com` matches any host ending in `example.com`. Path regexes
 * are only compared for equality (containment of regexes is not decidable here).
 */
export function shadows(r: RuleMatch, route: AppRoute): boolean {
  if (r.path && r.path !== route.path) return false;
  const h = normHost(r.hostname);
  if (!h || h === '*' || h === route.hostname) return true;
  return h.startsWith('*.') && route.hostname.endsWith(h.slice(2));
}

const describe = (r: AppRoute) => (r.path ? `${r.hostname} (path ${r.path})` : r.hostname);

/** Validates routes as cloudflared would, normalises host names, drops exact duplicates. */
export function normalizeRoutes(routes: readonly AppRoute[]): AppRoute[] {
  const seen = new Map<string, AppRoute>();
  for (const input of routes) {
    const route = normalizeRoute(input);
    const key = `${route.hostname} ${route.path ?? ''}`;
    const before = seen.get(key);
    if (before && before.service !== route.service) {
      throw new NornError('SPEC_INVALID', `${describe(route)} is routed to two different services`);
    }
    seen.set(key, route);
  }
  return [...seen.values()];
}

export function normalizeRoute(r: AppRoute): AppRoute {
  const hostname = normHost(r.hostname);
  if (!hostname || hostname === '*' || hostNameProblem(hostname, { wildcard: true })) {
    throw new NornError(
      'SPEC_INVALID',
      `"${String(r.hostname).slice(0, 100)}" is not a host name cloudflared can route ` +
        '(no port; a wildcard only as "*.example.com")',
    );
  }
  // The service is not echoed: a URL may carry credentials.
  if (typeof r.service !== 'string' || !SERVICE.test(r.service)) {
    throw new NornError(
      'SPEC_INVALID',
      `the service for ${hostname} must look like http://127.0.0.1:3000 (scheme and host, no path)`,
    );
  }
  const path = r.path || undefined;
  if (path !== undefined) {
    try {
      new RegExp(path);
    } catch {
      throw new NornError(
        'SPEC_INVALID',
        `the path for ${hostname} is not a valid regular expression`,
      );
    }
  }
  return path === undefined
    ? { hostname, service: r.service }
    : { hostname, path, service: r.service };
}

/**
 * Why `value` is not an endpoint url (a bare host such as `app.example.com` or `host:8080`, or an
 * http(s) URL), or undefined. The value itself is never echoed: query strings may carry tokens.
 */
function endpointProblem(value: string): string | undefined {
  const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value);
  if (hasScheme && !/^https?:\/\//i.test(value))
    return 'must be a host name or an http:// or https:// URL';
  let parsed: URL;
  try {
    parsed = new URL(hasScheme ? value : `http://${value}`);
  } catch {
    return 'is not a valid host name or URL';
  }
  if (parsed.username || parsed.password) return 'must not contain a user name or password';
  return (
    hostNameProblem(normHost(parsed.hostname), { wildcard: true }) &&
    'is not a valid host name or URL'
  );
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Maps an infraspec endpoint url ("api.example.com", "https://api.example.com/v1",
 * "api.example.com:8443") to a route. The port is dropped (cloudflared matches host names only) and
 * a path becomes an anchored regex (`/v1` → `^/v1`, regex characters escaped), which cloudflared
 * matches against the decoded request path.
 */
export function endpointToRoute(url: string, service: string): AppRoute {
  const raw = url.trim();
  const problem = endpointProblem(raw);
  // The url itself is not echoed: query strings may carry tokens.
  if (problem) throw new NornError('SPEC_INVALID', `endpoint url ${problem}`);
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  const parsed = new URL(hasScheme ? raw : `http://${raw}`);
  const hostname = normHost(parsed.hostname);
  if (parsed.search || parsed.hash) {
    throw new NornError(
      'SPEC_INVALID',
      `endpoint ${hostname}: a query string or fragment cannot be routed`,
    );
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(parsed.pathname);
  } catch {
    throw new NornError(
      'SPEC_INVALID',
      `endpoint ${hostname}: the path is not valid percent-encoding`,
    );
  }
  const path = pathname && pathname !== '/' ? `^${escapeRegex(pathname)}` : undefined;
  return normalizeRoute(path === undefined ? { hostname, service } : { hostname, path, service });
}
