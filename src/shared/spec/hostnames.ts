/**
 * Host names: what cloudflared routes (ingress/ingress.go: no port, a wildcard only as a leading
 * `*.`) and what DNS allows (labels of at most 63 characters, 253 in all). Shared by the infraspec
 * (`hosts`, `endpoints`) and the cloudflared driver, so a spec that registers also routes.
 */
import { SPEC_LIMITS } from './limits.js';

const HOST_NAME =
  /^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

/** Host names compare case-insensitively and without a trailing dot. */
export const normHost = (h: string | undefined) =>
  (h ?? '').trim().toLowerCase().replace(/\.$/, '');

/** Why `host` (already normalised with normHost) is not a host name, or undefined. */
export function hostNameProblem(host: string, o: { wildcard?: boolean } = {}): string | undefined {
  if (host.length > SPEC_LIMITS.hostLength)
    return `a host name has at most ${SPEC_LIMITS.hostLength} characters`;
  if (!HOST_NAME.test(host) || (!o.wildcard && host.startsWith('*.')))
    return o.wildcard
      ? 'is not a host name (letters, digits, "-" and "_" in dot-separated labels; no port; a wildcard only as "*.example.com")'
      : 'is not a host name (letters, digits, "-" and "_" in dot-separated labels, no port)';
  if (host.split('.').some((label) => label.length > 63))
    return 'has a label (a part between dots) longer than 63 characters';
  return undefined;
}
