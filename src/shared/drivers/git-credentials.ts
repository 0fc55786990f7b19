/**
 * Git tokens bound to hosts. A spec names its repository, and anyone who may register a spec may
 * name a server of their own, so a token goes only to the host (and port) an operator bound it to
 * (NORN_GIT_CREDENTIALS, NORN_GIT_TOKEN_HOSTS), and only over https, or plain http to this machine.
 */

/** One token and the one host it may be sent to. */
export interface GitCredential {
  /** Lowercased host name, or a bracketed IPv6 address. */
  host: string;
  /** Unset: the default port of the URL's scheme (443 for https, 80 for http). */
  port?: number;
  token: string;
  /** The variable that bound it, for error messages. */
  source: 'NORN_GIT_CREDENTIALS' | 'NORN_GIT_TOKEN_HOSTS';
}

export interface CredentialEnv {
  NORN_GIT_TOKEN?: string;
  NORN_GIT_TOKEN_HOSTS?: string;
  NORN_GIT_CREDENTIALS?: string;
}

/** What applies to a clone URL: a token to send, or why none is sent. */
export type CredentialMatch =
  | { kind: 'send'; credential: GitCredential; binding: string }
  | { kind: 'plain-http'; credential: GitCredential; binding: string }
  | { kind: 'none'; authority: string }
  | { kind: 'not-http' };

const HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/** `host`, `host:port` or `[v6]:port` → its parts, or a problem saying what is wrong. */
export function parseBinding(text: string): { host: string; port?: number } | string {
  const t = text.trim().toLowerCase();
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(t) || /[/@?#]/.test(t))
    return `"${text}" is not host[:port] (leave out the scheme, user and path)`;
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(t);
  const host = m?.[1] ?? '';
  if (!m || !(HOST.test(host) || IPV6.test(host))) return `"${text}" is not host[:port]`;
  if (m[2] === undefined) return { host };
  const port = Number(m[2]);
  if (port < 1 || port > 65_535) return `"${text}" has a port outside 1-65535`;
  return { host, port };
}

const bindingName = (c: Pick<GitCredential, 'host' | 'port'>) =>
  c.port === undefined ? c.host : `${c.host}:${c.port}`;

/** Splits NORN_GIT_CREDENTIALS: a JSON object, or `host=token,host2=token2`. */
function credentialPairs(text: string): Array<[string, unknown]> | string {
  if (text.trim().startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        return Object.entries(parsed);
    } catch {
      // reported below, without echoing the text: it holds tokens
    }
    return 'is not a valid JSON object of host → token';
  }
  const pairs: Array<[string, unknown]> = [];
  for (const part of text.split(',')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq < 0) return 'must be host=token pairs separated by commas (or a JSON object)';
    pairs.push([part.slice(0, eq), part.slice(eq + 1).trim()]);
  }
  return pairs;
}

/**
 * Reads the credential variables; every problem is listed (never a token). NORN_GIT_TOKEN alone is
 * refused: a token without hosts would go wherever a spec points.
 */
export function parseGitCredentials(env: CredentialEnv): {
  credentials: GitCredential[];
  problems: string[];
} {
  const credentials: GitCredential[] = [];
  const problems: string[] = [];
  const add = (source: GitCredential['source'], key: string, token: unknown) => {
    const parsed = parseBinding(key);
    if (typeof parsed === 'string') return problems.push(`${source}: ${parsed}`);
    if (typeof token !== 'string' || !token.trim() || /\s/.test(token.trim()))
      return problems.push(`${source}: the token for ${bindingName(parsed)} must be one word`);
    if (credentials.some((c) => bindingName(c) === bindingName(parsed)))
      return problems.push(`${source}: ${bindingName(parsed)} is bound to more than one token`);
    credentials.push({ ...parsed, token: token.trim(), source });
  };
  if (env.NORN_GIT_CREDENTIALS) {
    const pairs = credentialPairs(env.NORN_GIT_CREDENTIALS);
    if (typeof pairs === 'string') problems.push(`NORN_GIT_CREDENTIALS: ${pairs}`);
    else for (const [key, token] of pairs) add('NORN_GIT_CREDENTIALS', key, token);
  }
  const hosts = (env.NORN_GIT_TOKEN_HOSTS ?? '').split(',').filter((h) => h.trim());
  if (env.NORN_GIT_TOKEN && !hosts.length)
    problems.push(
      'NORN_GIT_TOKEN: set NORN_GIT_TOKEN_HOSTS to the hosts it may be sent to (e.g. github.com), or bind tokens to hosts with NORN_GIT_CREDENTIALS',
    );
  if (!env.NORN_GIT_TOKEN && hosts.length)
    problems.push('NORN_GIT_TOKEN_HOSTS: set only together with NORN_GIT_TOKEN');
  if (env.NORN_GIT_TOKEN) for (const h of hosts) add('NORN_GIT_TOKEN_HOSTS', h, env.NORN_GIT_TOKEN);
  return { credentials, problems };
}

/** True for a host name that is this machine, where plain http cannot be sniffed off the wire. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The credential bound to `url`'s host and port (scheme default when the URL has none), if any. */
export function credentialFor(url: string, credentials: readonly GitCredential[]): CredentialMatch {
  const scheme = /^(https?):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (!scheme) return { kind: 'not-http' };
  const parsed = new URL(url);
  const port = Number(parsed.port || (scheme === 'https' ? 443 : 80));
  const defaultPort = scheme === 'https' ? 443 : 80;
  const credential = credentials.find(
    (c) => c.host === parsed.hostname && (c.port ?? defaultPort) === port,
  );
  if (!credential) return { kind: 'none', authority: parsed.host };
  const binding = bindingName(credential);
  if (scheme === 'http' && !isLoopbackHost(parsed.hostname))
    return { kind: 'plain-http', credential, binding };
  return { kind: 'send', credential, binding };
}

/** Hosts that have a credential, for messages (host names are not secret). */
function boundHosts(credentials: readonly GitCredential[]): string {
  return credentials.length ? credentials.map(bindingName).join(', ') : 'none';
}

/** What the step log says about credentials before cloning (host names only, never a token). */
export function credentialLine(c: CredentialMatch): string | undefined {
  if (c.kind === 'send')
    return `the git token bound to ${c.binding} (${c.credential.source}) is sent if the server asks for one`;
  if (c.kind === 'plain-http')
    return `not sending the git token bound to ${c.binding} over plain http to another machine (use https)`;
  if (c.kind === 'none') return `no git token is bound to ${c.authority}; cloning without one`;
  return undefined;
}

/** Why authentication failed, as far as norn can tell: which credential applied, or why none did. */
export function authFailureHint(
  url: string,
  c: CredentialMatch,
  credentials: readonly GitCredential[],
  said: string,
): string {
  if (c.kind === 'not-http')
    return 'check NORN_GIT_SSH_KEY, that the server knows its public key and that the repository exists';
  // git names the URL it wanted credentials for: after a redirect, another server's.
  const asked = /for '(https?:\/\/[^']+)'/.exec(said)?.[1];
  const askedHost = asked ? new URL(asked).host : undefined;
  const origin = new URL(url).host;
  if (askedHost && askedHost !== origin)
    return `${origin} redirected to ${askedHost}, which asked for credentials; a token is only ever sent to the host it is bound to`;
  if (c.kind === 'none')
    return `the server asked for credentials and no token is bound to ${c.authority}; bind one with NORN_GIT_CREDENTIALS (or NORN_GIT_TOKEN with NORN_GIT_TOKEN_HOSTS), tokens are bound to: ${boundHosts(credentials)}`;
  if (c.kind === 'plain-http')
    return `the token bound to ${c.binding} is not sent over plain http to a host other than this machine; use https`;
  return `the server refused the token bound to ${c.binding} (${c.credential.source}): check it, its access to the repository, and that the repository exists`;
}
