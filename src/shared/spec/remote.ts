/**
 * Fields that name things outside the app: its git repository and branch, web page, host names and
 * endpoints. Each is checked by the same function the deploy runs on it later (the git driver's
 * URL and ref checks, the cloudflared driver's endpoint parser), on top of norn's own rules.
 */
import { endpointToRoute } from '../drivers/cloudflared-routes.js';
import { assertSafeRef, assertSafeRepoUrl } from '../drivers/git-safety.js';
import { checkedText } from './fields.js';
import { hostNameProblem, normHost } from './hostnames.js';
import { SPEC_LIMITS } from './limits.js';

/** The clause a driver check gives for refusing a value (its `details.why`), or its message. */
function refusal(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    const why = (err as { details?: { why?: unknown } }).details?.why;
    return typeof why === 'string' ? why : (err as Error).message;
  }
}

/** Returns why `url` is not a git remote norn accepts, or undefined when it is fine. */
export function repoUrlProblem(url: string): string | undefined {
  if (url.startsWith('-')) return 'must not start with "-" (git would read it as an option)';
  if (/\s/.test(url)) return 'must not contain spaces or control characters';
  if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!\/)[^:]/.test(url)) return cloneProblem(url); // scp-like git@host:path
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (!scheme || !['https', 'http', 'ssh', 'file'].includes(scheme)) {
    return 'must be an https://, http://, ssh://, git@host:path or file:// URL';
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL';
  }
  if (scheme !== 'file' && !parsed.hostname) return 'has no host name';
  // A token in the URL would be committed with the spec and shown in logs; norn has its own way in.
  if (parsed.password || ((scheme === 'https' || scheme === 'http') && parsed.username)) {
    return 'must not contain a user name, password or token; give norn private-repository access with NORN_GIT_TOKEN or NORN_GIT_SSH_KEY';
  }
  return cloneProblem(url);
}

/** What the clone step's git driver says about the URL. */
const cloneProblem = (url: string) => {
  const why = refusal(() => assertSafeRepoUrl(url));
  return why && `cannot be cloned: ${why}`;
};

export const repoUrl = checkedText(repoUrlProblem, { max: SPEC_LIMITS.urlLength });

/** What `POST /api/apps/:id/deploy` takes as a ref; the git driver's rules come on top. */
const DEPLOY_REF = /^[A-Za-z0-9._/-]{1,200}$/;

/**
 * Why `ref` cannot be deployed, or undefined: the api's rule for refs and the clone step's
 * (git check-ref-format). Used for `repo.branch` and the deploy request's `ref` alike.
 */
export function deployRefProblem(ref: string): string | undefined {
  if (!DEPLOY_REF.test(ref) || ref.startsWith('-'))
    return 'must be a branch, tag or commit SHA of at most 200 letters, digits, ".", "_", "/" or "-", not starting with "-"';
  const why = refusal(() => assertSafeRef(ref));
  return why && `is not a ref git accepts: ${why}`;
}

export const gitRef = checkedText(deployRefProblem);

/** A page people open in a browser (`repo.repoWeb`). */
export const webUrl = checkedText(
  (value) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(value);
    } catch {
      parsed = undefined;
    }
    return parsed && /^https?:$/.test(parsed.protocol) && !parsed.username && !parsed.password
      ? undefined
      : 'must be an http:// or https:// URL without a user name or password';
  },
  { max: SPEC_LIMITS.urlLength },
);

/** `hosts.internal` / `hosts.external`: a plain host name. */
export const hostName = checkedText((value) => hostNameProblem(normHost(value)), {
  max: SPEC_LIMITS.hostLength,
});

/** Endpoints are checked by the forge step's own parser; the service address is filled in there. */
const ANY_SERVICE = 'http://127.0.0.1:80';

export const endpointUrl = checkedText(
  (value) => {
    try {
      endpointToRoute(value, ANY_SERVICE);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  { max: SPEC_LIMITS.urlLength },
);
