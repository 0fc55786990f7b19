/**
 * One spelling per repository, so a webhook's URLs (clone, ssh, web) can be matched against the URL
 * an app or stack was registered with, whichever of them it used.
 */

/** `user@host:path` (git's scp-like syntax): no scheme, and the path does not start with "/". */
const SCP_LIKE = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/)(.+)$/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/**
 * `https://Host:3000/owner/repo.git/`, `ssh://git@host:2222/owner/repo`, `git@host:owner/repo.git`
 * and `http://user:token@host/owner/repo` all become `host/owner/repo`: the host lowercased, its
 * port, credentials, query, fragment, a `.git` suffix and slashes at either end dropped. The port
 * goes because forges serve https and ssh on different ports of one host (Gitea's 3000 and 2222).
 * The path keeps its case (GitLab's paths are case-sensitive). A `file://` URL, or a plain
 * absolute path, is compared as its path (a `.git` there names another directory, so it stays).
 * Undefined when `url` is none of these.
 */
export function normalizeRepoUrl(url: string): string | undefined {
  const raw = url.trim();
  if (raw === '') return undefined;
  if (raw.startsWith('/')) return trimSlashes(raw, '/');
  const scheme = SCHEME.exec(raw)?.[1]?.toLowerCase();
  if (!scheme) {
    const scp = SCP_LIKE.exec(raw);
    return scp ? join(scp[1]!, scp[2]!) : undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return undefined;
  }
  if (scheme === 'file') return trimSlashes(decodeURIComponent(parsed.pathname), '/');
  if (!['https', 'http', 'ssh', 'git', 'git+ssh', 'ssh+git'].includes(scheme)) return undefined;
  if (!parsed.hostname) return undefined;
  return join(parsed.hostname, decodeURIComponent(parsed.pathname));
}

function join(host: string, path: string): string | undefined {
  const repo = trimSlashes(path, '').replace(/\.git$/i, '');
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return repo ? `${name}/${repo}` : undefined;
}

/** Drops trailing slashes (and, when `lead` is '', leading ones), keeping `lead` in front. */
function trimSlashes(path: string, lead: '/' | ''): string {
  const inner = path.replace(/^\/+/, '').replace(/\/+$/, '');
  return lead + inner;
}

/** The normalized forms of `urls` (each once, unreadable ones left out). */
export function normalizeRepoUrls(urls: ReadonlyArray<string | null | undefined>): string[] {
  const out = new Set<string>();
  for (const url of urls) {
    const n = typeof url === 'string' ? normalizeRepoUrl(url) : undefined;
    if (n) out.add(n);
  }
  return [...out];
}
