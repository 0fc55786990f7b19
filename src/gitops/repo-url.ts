/**
 * One key per git repository, whatever form its URL is written in, so a webhook's repository and
 * a stack's `repo.url` can be matched: https, ssh and scp-like (git@host:owner/repo) URLs become
 * `host/owner/repo` (lowercase, no user, port, ".git" or trailing "/"); file:// URLs become the
 * path. A minimal copy: another change writes the full version under this path and signature.
 */
export function normalizeRepoUrl(url: string): string {
  const trimmed = url.trim();
  const scp = /^[^@/:\s]+@([^:/\s]+):(?!\/)(.+)$/.exec(trimmed);
  if (scp) return key(scp[1]!, scp[2]!);
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return trimmed;
  }
  if (parsed.protocol === 'file:')
    return decodeURIComponent(parsed.pathname).replace(/\/+$/, '') || '/';
  return key(parsed.hostname, decodeURIComponent(parsed.pathname));
}

function key(host: string, path: string): string {
  const clean = path
    .split('/')
    .filter(Boolean)
    .join('/')
    .replace(/\.git$/i, '');
  return `${host}/${clean}`.toLowerCase();
}
