/**
 * The git driver behind the pipeline's `clone` step: fetches exactly one commit (a branch, tag,
 * full or abbreviated SHA) into a directory with the `git` CLI, shallow whenever the server allows.
 *
 * Idempotent: a directory left by an earlier, killed attempt (it has a `.git`) is emptied first, and
 * a failed attempt empties it again, so a retry always starts clean.
 */
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isNornError, NornError } from '../errors.js';
import { runCommand } from '../exec.js';
import { authFailureHint, credentialLine, type GitCredential } from './git-credentials.js';
import { createGitEnv, type GitAuth, type GitEnv } from './git-env.js';
import { assertSafeRef, assertSafeRepoUrl, HEX_SHA } from './git-safety.js';

export { assertSafeRef, assertSafeRepoUrl } from './git-safety.js';
export type { GitAuth } from './git-env.js';
export type { GitCredential } from './git-credentials.js';

export interface CloneOptions {
  url: string;
  ref: string;
  dir: string;
  auth?: GitAuth;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

export interface CloneResult {
  /** The checked-out commit, 40 lowercase hex digits. */
  commitSha: string;
  /** The ref as requested. */
  ref: string;
}

interface Ctx {
  dir: string;
  url: string;
  git: GitEnv;
  credentials: readonly GitCredential[];
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

/**
 * Clones `url` into `dir` (absent, empty, or left by an earlier attempt) and checks out `ref`
 * detached. Returns the resolved commit SHA. Errors: BAD_REQUEST (unsafe ref/URL), CONFLICT (dir
 * holds something else), NOT_FOUND (no such ref), COMMAND_FAILED (git failed), CANCELLED (aborted).
 */
export async function cloneAt(opts: CloneOptions): Promise<CloneResult> {
  assertSafeRepoUrl(opts.url);
  assertSafeRef(opts.ref);
  const dir = resolve(opts.dir);
  await prepareDir(dir);
  const git = await createGitEnv(opts.url, opts.auth);
  const ctx: Ctx = {
    dir,
    url: opts.url,
    git,
    credentials: opts.auth?.credentials ?? [],
    signal: opts.signal,
    onLine: opts.onLine,
  };
  const said = credentialLine(git.credential);
  if (said) ctx.onLine?.(said);
  try {
    await runGit(ctx, ['init', '-q', '--', dir], 'could not create the clone directory');
    await runGit(
      ctx,
      ['-C', dir, 'remote', 'add', '--', 'origin', opts.url],
      'could not add the remote',
    );
    await fetchRef(ctx, opts.ref);
    const head = await runGit(
      ctx,
      ['-C', dir, 'rev-parse', '--verify', 'HEAD'],
      'could not read HEAD',
      { quietStdout: true },
    );
    const commitSha = head.trim();
    if (!/^[0-9a-f]{40}$/.test(commitSha))
      throw new NornError('INTERNAL', `git rev-parse HEAD printed ${commitSha.slice(0, 80)}`);
    ctx.onLine?.(`checked out ${commitSha} (${opts.ref})`);
    return { commitSha, ref: opts.ref };
  } catch (err) {
    await emptyDir(dir).catch(() => {}); // the next attempt would do it too; this just frees the disk now
    throw err;
  } finally {
    await git.dispose();
  }
}

/** Makes sure `dir` exists and is empty, removing what an earlier attempt of ours left there. */
async function prepareDir(dir: string): Promise<void> {
  const stat = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!stat) {
    await mkdir(dir, { recursive: true });
    return;
  }
  if (!stat.isDirectory())
    throw new NornError('CONFLICT', `clone target ${dir} exists and is not a directory`);
  const entries = await readdir(dir);
  if (entries.length === 0) return;
  // Only a directory with a .git is ours to wipe: anything else may be someone's data.
  if (!entries.includes('.git')) {
    throw new NornError(
      'CONFLICT',
      `clone target ${dir} is not empty and was not made by an earlier clone`,
    );
  }
  await emptyDir(dir);
}

async function emptyDir(dir: string): Promise<void> {
  for (const entry of await readdir(dir))
    await rm(join(dir, entry), { recursive: true, force: true });
}

interface RemoteRef {
  name: string;
  sha: string;
}

/** Fetches the commit `ref` names and checks it out, picking the cheapest fetch the server allows. */
async function fetchRef(ctx: Ctx, ref: string): Promise<void> {
  const isHex = HEX_SHA.test(ref);
  // A hex string may still be a branch or tag name; names win, as with `git clone --branch`.
  const remote = isHex
    ? await lsRemote(ctx, ['--heads', '--tags'], [])
    : await lsRemote(ctx, [], [ref]);
  const named = pickNamedRef(remote, ref);
  if (named) {
    const local = localRefFor(named.name);
    ctx.onLine?.(`fetching ${named.name} from ${ctx.url}`);
    await fetch(ctx, ['--depth', '1', '--', 'origin', `+${named.name}:${local}`]);
    return checkout(ctx, `${local}^{commit}`, ref);
  }
  if (!isHex) throw notFound(ctx, ref);

  const sha = ref.toLowerCase();
  const tip = uniqueTip(remote, sha);
  const full = sha.length === 40 ? sha : tip;
  if (full && (await fetchSha(ctx, full))) return checkout(ctx, `${full}^{commit}`, ref);

  // Servers only give out unadvertised or abbreviated SHAs from a full history.
  ctx.onLine?.(`fetching all branches and tags from ${ctx.url} to find ${ref}`);
  await fetch(ctx, [
    '--',
    'origin',
    '+refs/heads/*:refs/remotes/origin/*',
    '+refs/tags/*:refs/tags/*',
  ]);
  return checkout(ctx, `${sha}^{commit}`, ref);
}

/** A shallow fetch of one SHA; false when the server refuses to serve it by SHA. */
async function fetchSha(ctx: Ctx, sha: string): Promise<boolean> {
  ctx.onLine?.(`fetching commit ${sha} from ${ctx.url}`);
  try {
    await fetch(ctx, ['--depth', '1', '--', 'origin', sha]);
    return true;
  } catch (err) {
    // Refusals differ by server and protocol ("not our ref", "unadvertised object", a hang-up), so
    // anything but an auth failure gets the full fetch, which fails on its own if the server is down.
    if (isNornError(err) && err.code === 'COMMAND_FAILED' && !isAuthFailure(err.message)) {
      ctx.onLine?.('the server does not serve this commit by SHA; falling back to a full fetch');
      return false;
    }
    throw err;
  }
}

async function lsRemote(ctx: Ctx, options: string[], patterns: string[]): Promise<RemoteRef[]> {
  const argv = ['-C', ctx.dir, 'ls-remote', ...options, '--', 'origin', ...patterns];
  const out = await runGit(ctx, argv, `could not read ${ctx.url}`, { quietStdout: true });
  return out.split('\n').flatMap((line) => {
    const [sha, name] = line.split('\t');
    return sha && name && /^[0-9a-f]{40}$/.test(sha) ? [{ sha, name }] : [];
  });
}

function pickNamedRef(remote: RemoteRef[], ref: string): RemoteRef | undefined {
  const candidates = ref.startsWith('refs/')
    ? [ref]
    : [`refs/heads/${ref}`, `refs/tags/${ref}`, ref];
  for (const name of candidates) {
    const hit = remote.find((r) => r.name === name);
    if (hit) return hit;
  }
  return undefined;
}

/** The one advertised commit (tips and peeled tags) starting with `prefix`, if exactly one. */
function uniqueTip(remote: RemoteRef[], prefix: string): string | undefined {
  const shas = new Set(remote.filter((r) => r.sha.startsWith(prefix)).map((r) => r.sha));
  return shas.size === 1 ? [...shas][0] : undefined;
}

function localRefFor(name: string): string {
  if (name.startsWith('refs/heads/'))
    return `refs/remotes/origin/${name.slice('refs/heads/'.length)}`;
  if (name.startsWith('refs/tags/')) return name;
  return 'refs/norn/fetched';
}

async function fetch(ctx: Ctx, args: string[]): Promise<void> {
  await runGit(
    ctx,
    ['-C', ctx.dir, 'fetch', '--no-tags', '--no-write-fetch-head', ...args],
    `could not fetch from ${ctx.url}`,
  );
}

async function checkout(ctx: Ctx, revision: string, ref: string): Promise<void> {
  // rev-parse --quiet exits 1 without output when the commit is missing: a clean NOT_FOUND.
  const res = await runCommand(
    ['git', '-C', ctx.dir, 'rev-parse', '--verify', '--quiet', revision],
    runOptions(ctx, true),
  );
  const sha = res.stdout.trim();
  if (res.code !== 0 || !/^[0-9a-f]{40}$/.test(sha)) throw notFound(ctx, ref);
  await runGit(
    ctx,
    ['-C', ctx.dir, 'checkout', '-q', '--detach', sha, '--'],
    `could not check out ${ref}`,
  );
}

function notFound(ctx: Ctx, ref: string): NornError {
  return new NornError(
    'NOT_FOUND',
    `git ref ${ref} not found in ${ctx.url} (no such branch, tag or reachable commit)`,
    {
      details: { ref },
    },
  );
}

function runOptions(ctx: Ctx, quietStdout: boolean) {
  return {
    env: ctx.git.env,
    signal: ctx.signal,
    redact: ctx.git.secrets,
    tailLines: 20,
    onLine: (line: string, stream: 'stdout' | 'stderr') => {
      if (line.trim() && !(quietStdout && stream === 'stdout')) ctx.onLine?.(line);
    },
  };
}

/** Runs git; a non-zero exit becomes COMMAND_FAILED saying what failed, with git's own last words. */
async function runGit(
  ctx: Ctx,
  args: string[],
  what: string,
  opts: { quietStdout?: boolean } = {},
): Promise<string> {
  const res = await runCommand(['git', ...args], runOptions(ctx, opts.quietStdout ?? false));
  if (res.code === 0) return res.stdout;
  const said = res.tail
    .filter((l) => l.trim() && !/^[0-9a-f]{40}\t/.test(l))
    .slice(-6)
    .join('\n');
  const hint = isAuthFailure(said)
    ? ` (authentication failed: ${authFailureHint(ctx.url, ctx.git.credential, ctx.credentials, said)})`
    : '';
  throw new NornError(
    'COMMAND_FAILED',
    `${what}${hint}: git exited with ${res.code ?? res.signal}${said ? `:\n${said}` : ''}`,
    {
      retryable: isTransient(said) && !isAuthFailure(said),
      details: { exitCode: res.code, tail: res.tail },
    },
  );
}

function isAuthFailure(text: string): boolean {
  return /Authentication failed|could not read (Username|Password)|terminal prompts disabled|Permission denied|HTTP 40[13]|returned error: 40[13]|Host key verification failed/i.test(
    text,
  );
}

/** Network trouble a later retry may not meet; auth failures and missing repos are final. */
function isTransient(text: string): boolean {
  return /Could not resolve host|Connection (timed out|refused|reset)|Failed to connect|Couldn't connect|Operation timed out|early EOF|RPC failed|returned error: 5\d\d|HTTP 5\d\d|remote end hung up unexpectedly|Network is unreachable|transfer rate too low|ssh: connect to host/i.test(
    text,
  );
}
