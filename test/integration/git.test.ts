/** The git driver against real repositories: file://, a private smart-HTTP server, a private sshd. */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { isNornError, type NornError } from '../../src/shared/errors.js';
import {
  assertSafeRef,
  assertSafeRepoUrl,
  cloneAt,
  type CloneOptions,
} from '../../src/shared/drivers/git.js';
import {
  parseGitCredentials,
  type GitCredential,
} from '../../src/shared/drivers/git-credentials.js';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.js';
import {
  filesContaining,
  git,
  makeFixtureRepo,
  makeGitSpy,
  type FixtureRepo,
} from '../support/git/repos.js';
import {
  makeSshKey,
  sshdAvailable,
  startGitSshServer,
  type GitSshServer,
} from '../support/git/ssh-server.js';

let root: string;
let repo: FixtureRepo;
let n = 0;
const target = () => join(root, 'clones', `c${++n}`);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'norn-git-test-'));
  repo = await makeFixtureRepo(root);
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function clone(opts: Partial<CloneOptions> & { url: string; ref: string }) {
  const lines: string[] = [];
  const dir = opts.dir ?? target();
  const result = await cloneAt({ dir, onLine: (l) => lines.push(l), ...opts });
  return { result, lines, dir };
}

async function failure(promise: Promise<unknown>): Promise<NornError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isNornError(err)) throw new Error(`expected a NornError, got ${String(err)}`);
  return err;
}

/** A clone of `url`'s main that must fail: its NornError and the lines it wrote. */
async function failedClone(url: string, auth?: CloneOptions['auth']) {
  const lines: string[] = [];
  const onLine = (l: string) => lines.push(l);
  const err = await failure(cloneAt({ url, ref: 'main', dir: target(), auth, onLine }));
  return { err, lines };
}

/** `token` bound to `host:port` by NORN_GIT_CREDENTIALS, read as the config reads it. */
function bind(token: string, binding: string): GitCredential[] {
  const { credentials, problems } = parseGitCredentials({
    NORN_GIT_CREDENTIALS: JSON.stringify({ [binding]: token }),
  });
  expect(problems).toEqual([]);
  return credentials;
}

/** A non-loopback IPv4 address of this machine, if it has one. */
const externalIp = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

/** Runs `fn` with a git wrapper first on PATH that logs every command line. */
async function withGitSpy() {
  const spy = await makeGitSpy(await mkdtemp(join(root, 'spy-')));
  const oldPath = process.env.PATH;
  process.env.PATH = `${spy.binDir}:${oldPath}`;
  onTestFinished(() => {
    process.env.PATH = oldPath;
  });
  return spy;
}

describe('ref and URL checks', () => {
  it.each([
    'main',
    'feature/x',
    'v1.0',
    'refs/tags/v1.0',
    'HEAD',
    'abc1234',
    'a'.repeat(40),
    'release-2024.01',
  ])('accepts ref %s', (ref) => expect(() => assertSafeRef(ref)).not.toThrow());

  it.each([
    '',
    '--upload-pack=touch /tmp/pwned',
    '-oProxyCommand=x',
    'a..b',
    'a b',
    'a\tb',
    'a\nb',
    'x@{1}',
    '@',
    'a.lock',
    'a/b.lock/c',
    '.hidden',
    'a/.b',
    'a/',
    '/a',
    'a//b',
    'a.',
    'a~1',
    'a^',
    'a:b',
    'a?',
    'a*',
    'a[1]',
    'a\\b',
    '\u0000',
  ])('refuses ref %j with BAD_REQUEST', (ref) => {
    expect(() => assertSafeRef(ref)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
  });

  it.each([
    'https://github.com/acme/app.git',
    'http://127.0.0.1:8080/app.git',
    'ssh://git@example.com:2222/acme/app.git',
    'git@github.com:acme/app.git',
    'file:///srv/git/app.git',
    '/srv/git/app.git',
    'https://bot@example.com/app.git',
  ])('accepts URL %s', (url) => expect(() => assertSafeRepoUrl(url)).not.toThrow());

  it.each([
    '',
    '--upload-pack=touch /tmp/pwned',
    '-oProxyCommand=touch /tmp/pwned',
    'ext::sh -c touch% /tmp/pwned',
    'fd::17',
    'git://example.com/app.git',
    'ftp://example.com/app.git',
    'ssh://-oProxyCommand=x/app.git',
    'ssh://-user@example.com/app.git',
    '-oProxyCommand=x:app.git',
    'relative/path',
    'https://u:secret@example.com/a.git',
    'https://example.com/a\n.git',
    ' https://example.com/a.git',
    'file://otherhost/srv/app.git',
  ])('refuses URL %j with BAD_REQUEST', (url) => {
    expect(() => assertSafeRepoUrl(url)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
  });

  it('refuses option-looking refs and URLs before any git process runs', async () => {
    const spy = await withGitSpy();
    const pwned = join(root, 'pwned');
    const attempts: [string, string][] = [
      [`file://${repo.bare}`, `--upload-pack=touch ${pwned}`],
      [`file://${repo.bare}`, `-oProxyCommand=touch ${pwned}`],
      [`--upload-pack=touch ${pwned}`, 'main'],
      [`-oProxyCommand=touch ${pwned}`, 'main'],
      [`ext::sh -c touch% ${pwned}`, 'main'],
      [`ssh://-oProxyCommand=touch%20${pwned}/x`, 'main'],
    ];
    for (const [url, ref] of attempts) {
      const err = await failure(cloneAt({ url, ref, dir: target() }));
      expect(err.code).toBe('BAD_REQUEST');
    }
    expect(await spy.calls()).toEqual([]);
    expect(existsSync(pwned)).toBe(false);
  });
});

describe('cloneAt over file://', () => {
  it.each([
    ['branch main', 'main', 'main'],
    ['branch with a slash', 'feature/x', 'feature'],
    ['annotated tag', 'v1.0', 'tagged'],
    ['full ref name', 'refs/tags/v1.0', 'tagged'],
    // What a deploy of an app without repo.branch asks for: the remote's default branch.
    ['default branch (HEAD)', 'HEAD', 'main'],
  ] as const)('checks out a %s', async (_what, ref, which) => {
    const { result, dir, lines } = await clone({ url: `file://${repo.bare}`, ref });
    expect(result).toEqual({ commitSha: repo.shas[which], ref });
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(repo.shas[which]);
    expect(await git(dir, 'status', '--porcelain')).toBe('');
    expect(lines.join('\n')).toContain(`checked out ${repo.shas[which]}`);
    // Shallow: a branch or tag brings one commit, not the history.
    expect(await git(dir, 'rev-list', '--count', 'HEAD')).toBe('1');
  });

  it('checks out a full SHA that is no branch tip, shallowly', async () => {
    const { result, dir } = await clone({ url: `file://${repo.bare}`, ref: repo.shas.first });
    expect(result.commitSha).toBe(repo.shas.first);
    expect(await readFile(join(dir, 'README.md'), 'utf8')).toBe('# app\n');
    expect(existsSync(join(dir, 'VERSION'))).toBe(false);
    expect(await git(dir, 'rev-list', '--count', 'HEAD')).toBe('1');
  });

  it('checks out an abbreviated SHA that is no tip (full fetch) and one that is a tip', async () => {
    const notTip = await clone({ url: `file://${repo.bare}`, ref: repo.shas.first.slice(0, 8) });
    expect(notTip.result).toEqual({ commitSha: repo.shas.first, ref: repo.shas.first.slice(0, 8) });
    const tip = await clone({ url: repo.bare, ref: repo.shas.feature.slice(0, 10).toUpperCase() });
    expect(tip.result.commitSha).toBe(repo.shas.feature);
    expect(await git(tip.dir, 'rev-list', '--count', 'HEAD')).toBe('1');
  });

  it('works from a plain absolute path too', async () => {
    const { result } = await clone({ url: repo.path, ref: 'main' });
    expect(result.commitSha).toBe(repo.shas.main);
  });

  it('fails with NOT_FOUND for an unknown branch or SHA, and leaves the dir empty', async () => {
    for (const ref of ['no-such-branch', 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef', 'deadbee']) {
      const dir = target();
      const err = await failure(cloneAt({ url: `file://${repo.bare}`, ref, dir }));
      expect(err.code).toBe('NOT_FOUND');
      expect(err.message).toContain(`git ref ${ref} not found`);
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('fails with COMMAND_FAILED for a missing repository', async () => {
    const err = await failure(
      cloneAt({ url: `file://${root}/missing.git`, ref: 'main', dir: target() }),
    );
    expect(err.code).toBe('COMMAND_FAILED');
    expect(err.message).toMatch(
      /could not read file:\/\/.*missing\.git.*\n.*does not appear to be a git repository/s,
    );
  });
});

describe('re-running on the same dir', () => {
  it('is idempotent: twice in a row, then on a dir a killed attempt left behind', async () => {
    const dir = target();
    const first = await clone({ url: `file://${repo.bare}`, ref: 'main', dir });
    const again = await clone({ url: `file://${repo.bare}`, ref: 'v1.0', dir });
    expect(first.result.commitSha).toBe(repo.shas.main);
    expect(again.result.commitSha).toBe(repo.shas.tagged);
    expect(await readFile(join(dir, 'VERSION'), 'utf8')).toBe('1.0\n');

    // What a kill mid-fetch leaves: a .git with a lock file and a stray file.
    await rm(dir, { recursive: true });
    await mkdir(join(dir, '.git', 'objects'), { recursive: true });
    await writeFile(join(dir, '.git', 'index.lock'), '');
    await writeFile(join(dir, 'half-written.txt'), 'junk');
    const third = await clone({ url: `file://${repo.bare}`, ref: 'feature/x', dir });
    expect(third.result.commitSha).toBe(repo.shas.feature);
    expect(existsSync(join(dir, 'half-written.txt'))).toBe(false);
  });

  it('refuses (CONFLICT) to wipe a non-empty dir that is not a clone', async () => {
    const dir = target();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'precious.txt'), 'keep me');
    const err = await failure(cloneAt({ url: `file://${repo.bare}`, ref: 'main', dir }));
    expect(err.code).toBe('CONFLICT');
    expect(await readFile(join(dir, 'precious.txt'), 'utf8')).toBe('keep me');
  });
});

describe('private repository over https (smart HTTP, token)', () => {
  const token = `ghp_${randomBytes(18).toString('hex')}`;
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  let server: Awaited<ReturnType<typeof startGitHttpServer>>;
  let auth: { credentials: GitCredential[] };
  beforeAll(async () => {
    server = await startGitHttpServer({ root, token });
    auth = { credentials: bind(token, `127.0.0.1:${server.port}`) };
  });
  afterAll(() => server.close());

  it('clones with the token, which never reaches argv, output or the clone', async () => {
    const spy = await withGitSpy();
    const { result, lines, dir } = await clone({
      url: `${server.url}/app.git`,
      ref: repo.shas.first,
      auth,
    });
    expect(result.commitSha).toBe(repo.shas.first);
    expect(server.authHeaders).toContain(`Basic ${basic}`); // the server really checked it

    const calls = await spy.calls();
    expect(calls.length).toBeGreaterThan(2);
    expect(calls.filter((call) => call.includes(token) || call.includes(basic))).toEqual([]);
    expect(lines.join('\n')).not.toContain(token);
    expect(await filesContaining(dir, [token, basic])).toEqual([]);
    expect(await readFile(join(dir, '.git', 'config'), 'utf8')).not.toMatch(
      /extraheader|Authorization/i,
    );
  });

  it('clones a branch and a short SHA with the token', async () => {
    const branch = await clone({ url: `${server.url}/app.git`, ref: 'feature/x', auth });
    expect(branch.result.commitSha).toBe(repo.shas.feature);
    const short = await clone({
      url: `${server.url}/app.git`,
      ref: repo.shas.tagged.slice(0, 7),
      auth,
    });
    expect(short.result.commitSha).toBe(repo.shas.tagged);
  });

  it('fails cleanly, without prompting, with no or a wrong token', async () => {
    const wrong = { credentials: bind(`wrong_${token}`, `127.0.0.1:${server.port}`) };
    for (const auth of [undefined, wrong]) {
      const started = Date.now();
      const { err, lines } = await failedClone(`${server.url}/app.git`, auth);
      expect(err.code).toBe('COMMAND_FAILED');
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(
        auth
          ? /could not read http:\/\/127\.0\.0\.1:\d+\/app\.git \(authentication failed: the server refused the token bound to 127\.0\.0\.1:\d+ \(NORN_GIT_CREDENTIALS\)/
          : /could not read http:\/\/127\.0\.0\.1:\d+\/app\.git \(authentication failed: the server asked for credentials and no token is bound to 127\.0\.0\.1:\d+/,
      );
      expect(err.message).toMatch(/terminal prompts disabled|Authentication failed/);
      const everything = `${err.message}\n${JSON.stringify(err.details)}\n${lines.join('\n')}`;
      expect(everything).not.toContain(token);
      expect(everything).not.toContain(basic);
      expect(Date.now() - started).toBeLessThan(10_000);
    }
  });

  it('fails with COMMAND_FAILED for a repository the server does not have', async () => {
    const err = await failure(
      cloneAt({ url: `${server.url}/nope.git`, ref: 'main', dir: target(), auth }),
    );
    expect(err.code).toBe('COMMAND_FAILED');
    expect(err.message).toContain('nope.git');
    expect(err.message).not.toContain(token);
  });
});

describe('git tokens are bound to hosts', () => {
  const token = `ghp_${randomBytes(18).toString('hex')}`;
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  const servers: GitHttpServer[] = [];
  const serve = async (options: Partial<Parameters<typeof startGitHttpServer>[0]>) => {
    const server = await startGitHttpServer({ root, ...options });
    servers.push(server);
    return server;
  };
  afterAll(() => Promise.all(servers.map((s) => s.close())));

  it('sends a token bound to 127.0.0.1:<A> to A, not to another port nor to localhost:<A>', async () => {
    const a = await serve({ token });
    const b = await serve({ token });
    const auth = { credentials: bind(token, `127.0.0.1:${a.port}`) };
    const ok = await clone({ url: `${a.url}/app.git`, ref: 'main', auth });
    expect(ok.result.commitSha).toBe(repo.shas.main);
    expect(a.authHeaders).toContain(`Basic ${basic}`);
    const seenByA = a.authHeaders.length;

    for (const url of [`${b.url}/app.git`, `http://localhost:${a.port}/app.git`]) {
      const { err, lines } = await failedClone(url, auth);
      const host = new URL(url).host;
      expect(err.code).toBe('COMMAND_FAILED');
      expect(err.message).toContain(
        `(authentication failed: the server asked for credentials and no token is bound to ${host}; bind one with NORN_GIT_CREDENTIALS (or NORN_GIT_TOKEN with NORN_GIT_TOKEN_HOSTS), tokens are bound to: 127.0.0.1:${a.port})`,
      );
      expect(lines).toContain(`no git token is bound to ${host}; cloning without one`);
    }
    expect(b.authHeaders).toEqual([]);
    expect(a.authHeaders).toHaveLength(seenByA); // localhost:<A> reached A, without the token
  });

  it.skipIf(!externalIp)(
    'does not send a token over plain http to an address other than loopback',
    async () => {
      const server = await serve({ token, host: externalIp });
      const auth = { credentials: bind(token, `${externalIp}:${server.port}`) };
      const { err, lines } = await failedClone(`${server.url}/app.git`, auth);
      expect(err.message).toContain(
        `the token bound to ${externalIp}:${server.port} is not sent over plain http to a host other than this machine; use https`,
      );
      expect(lines[0]).toMatch(/^not sending the git token bound to .* over plain http/);
      expect(server.authHeaders).toEqual([]);
    },
  );

  it('a redirect to another host does not carry the token there', async () => {
    // A checks the token, then redirects the first request of the fetch to B, which serves anyone.
    // (With http.extraHeader, git sent B the token on every request after the redirect.)
    const b = await serve({});
    const a = await serve({ token, redirectTo: b.url });
    const auth = { credentials: bind(token, `127.0.0.1:${a.port}`) };
    const { result } = await clone({ url: `${a.url}/app.git`, ref: 'main', auth });
    expect(result.commitSha).toBe(repo.shas.main);
    expect(a.authHeaders).toContain(`Basic ${basic}`);
    expect(b.requests.length).toBeGreaterThan(0); // git did follow the redirect
    expect(b.authHeaders).toEqual([]);

    // C redirects to D, which asks for credentials: git asks for D's, and none are given.
    const d = await serve({ token });
    const c = await serve({ redirectTo: d.url });
    const { err } = await failedClone(`${c.url}/app.git`, {
      credentials: bind(token, `127.0.0.1:${c.port}`),
    });
    expect(err.message).toContain(
      `(authentication failed: 127.0.0.1:${c.port} redirected to 127.0.0.1:${d.port}, which asked for credentials; a token is only ever sent to the host it is bound to)`,
    );
    expect(d.authHeaders).toEqual([]);
  });
});

describe('a protocol v0 server that will not serve unadvertised SHAs', () => {
  let server: Awaited<ReturnType<typeof startGitHttpServer>>;
  beforeAll(async () => {
    server = await startGitHttpServer({ root, protocolV0: true });
  });
  afterAll(() => server.close());

  it('falls back to a full fetch for a full SHA that is no tip', async () => {
    const { result, lines } = await clone({ url: `${server.url}/app.git`, ref: repo.shas.first });
    expect(result.commitSha).toBe(repo.shas.first);
    expect(lines.join('\n')).toContain('falling back to a full fetch');
  });
});

describe.skipIf(!sshdAvailable)(
  'private repository over ssh (needs openssh-server: /usr/sbin/sshd)',
  () => {
    let sshd: GitSshServer;
    beforeAll(async () => {
      sshd = await startGitSshServer();
    });
    afterAll(() => sshd?.stop());

    const leftoverKeyDirs = async () =>
      (await readdir(tmpdir())).filter((e) => e.startsWith('norn-git-ssh-'));

    it('clones with the key given as text and as a path, and removes the temp key', async () => {
      const before = await leftoverKeyDirs();
      const asText = await clone({
        url: sshd.urlFor(repo.bare),
        ref: 'v1.0',
        auth: { sshKey: sshd.clientKey.privateKey },
      });
      expect(asText.result.commitSha).toBe(repo.shas.tagged);
      expect(asText.lines.join('\n')).not.toContain('PRIVATE KEY');
      expect(
        await filesContaining(asText.dir, [sshd.clientKey.privateKey.split('\n')[1]!]),
      ).toEqual([]);
      const asPath = await clone({
        url: sshd.urlFor(repo.bare),
        ref: repo.shas.first,
        auth: { sshKey: sshd.clientKey.privateKeyPath },
      });
      expect(asPath.result.commitSha).toBe(repo.shas.first);
      // A key squeezed into one env-var line, with literal \n sequences.
      const oneLine = sshd.clientKey.privateKey.trim().replace(/\n/g, '\\n');
      const squeezed = await clone({
        url: sshd.urlFor(repo.bare),
        ref: 'main',
        auth: { sshKey: oneLine },
      });
      expect(squeezed.result.commitSha).toBe(repo.shas.main);
      expect(await leftoverKeyDirs()).toEqual(before);
    });

    it('fails cleanly with a key the server does not know', async () => {
      const other = await makeSshKey(await mkdtemp(join(root, 'key-')), 'other');
      const err = await failure(
        cloneAt({
          url: sshd.urlFor(repo.bare),
          ref: 'main',
          dir: target(),
          auth: { sshKey: other.privateKey },
        }),
      );
      expect(err.code).toBe('COMMAND_FAILED');
      expect(err.message).toMatch(/Permission denied \(publickey\)/);
      expect(err.message).not.toContain('PRIVATE KEY');
    });
  },
);

/** Processes whose command line mentions `needle` or whose working dir is `dir`. */
async function processesTouching(needle: string, dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
    if (cmd.includes(needle) || cwd.startsWith(dir))
      found.push(`${pid}: ${cmd.replace(/\0/g, ' ')}`);
  }
  return found;
}

describe('abort', () => {
  it('stops a clone from a server that never answers within 2 s, kills git and removes the temp key', async () => {
    const server = await startGitHttpServer({ root, stall: true });
    onTestFinished(() => server.close());
    const key = await makeSshKey(await mkdtemp(join(root, 'key-')), 'abort');
    const keyDirsBefore = (await readdir(tmpdir())).filter((e) => e.startsWith('norn-git-ssh-'));
    const url = `${server.url}/app.git`;
    const dir = target();
    const ac = new AbortController();
    const cloning = cloneAt({
      url,
      ref: repo.shas.first,
      dir,
      signal: ac.signal,
      auth: { sshKey: key.privateKey },
    });
    await new Promise((r) => setTimeout(r, 700));
    expect(await processesTouching(server.url, dir)).not.toEqual([]); // git is really waiting on the server
    const abortedAt = Date.now();
    ac.abort('cancelled by test');
    const err = await failure(cloning);
    expect(err.code).toBe('CANCELLED');
    expect(Date.now() - abortedAt).toBeLessThan(2_000);
    expect(await processesTouching(server.url, dir)).toEqual([]);
    expect((await readdir(tmpdir())).filter((e) => e.startsWith('norn-git-ssh-'))).toEqual(
      keyDirsBefore,
    );
  });
});
