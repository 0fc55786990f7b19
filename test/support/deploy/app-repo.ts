/**
 * A real app repository for deploy tests: busybox FROM scratch (nothing can be pulled here), a
 * page under /www that names its commit, a slow Dockerfile for cancel tests, and symlinks that
 * lead out of the repository. A random nonce makes every build's content new, so the engine's
 * layer cache from an earlier test run cannot hide a build.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from '../git/repos.js';

export interface AppRepo {
  /** Bare repository: what the deploy clones (an absolute path is a valid repo.url). */
  url: string;
  nonce: string;
  shas: {
    /** First commit: not the tip of any branch or tag, so only reachable by its SHA. */
    first: string;
    /** The commit annotated tag v1.0 points at. */
    tagged: string;
    /** Tip of main. */
    main: string;
  };
  /** A directory outside the repository holding a valid Dockerfile (what the symlinks point at). */
  outsideDir: string;
  remove(): Promise<void>;
}

const BUSYBOX = '/bin/busybox';

/** The image every commit builds: busybox applets, the commit's page, and a build-time echo. */
const dockerfile = (nonce: string) =>
  [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    'COPY www /www',
    `RUN echo "build-step-output-${nonce}" && ls /www`,
    'CMD ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]',
  ].join('\n');

/** Same base, then a step that takes long enough to be cancelled in the middle of it. */
const slowDockerfile = (nonce: string) =>
  [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    `RUN echo "slow-build-${nonce}" && sleep 30`,
  ].join('\n');

export async function makeAppRepo(): Promise<AppRepo> {
  const parent = await mkdtemp(join(tmpdir(), 'norn-app-repo-'));
  const nonce = randomBytes(6).toString('hex');
  const work = join(parent, 'work');
  const outsideDir = join(parent, 'outside');
  await mkdir(join(work, 'www'), { recursive: true });
  await mkdir(outsideDir, { recursive: true });
  await writeFile(join(outsideDir, 'Dockerfile'), `${dockerfile(nonce)}\n`);

  await git(work, 'init', '-q', '-b', 'main');
  await copyFile(BUSYBOX, join(work, 'busybox'));
  await writeFile(join(work, 'Dockerfile'), `${dockerfile(nonce)}\n`);
  await writeFile(join(work, 'Dockerfile.slow'), `${slowDockerfile(nonce)}\n`);
  // A file link and a directory link that both lead out of the checkout.
  await symlink(join(outsideDir, 'Dockerfile'), join(work, 'Dockerfile.link'));
  await symlink(outsideDir, join(work, 'linked'));

  const commit = async (page: string, msg: string) => {
    await writeFile(join(work, 'www', 'index.html'), `${page} ${nonce}\n`);
    await git(work, 'add', '-A');
    await git(work, 'commit', '-q', '-m', msg);
    return git(work, 'rev-parse', 'HEAD');
  };
  const first = await commit('first', 'first');
  const tagged = await commit('tagged', 'release 1.0');
  await git(work, 'tag', '-a', 'v1.0', '-m', 'version 1.0');
  const main = await commit('main', 'start 1.1');

  const url = join(parent, 'app.git');
  await git(parent, 'clone', '-q', '--bare', '--', work, url);
  return {
    url,
    nonce,
    shas: { first, tagged, main },
    outsideDir,
    remove: () => rm(parent, { recursive: true, force: true }),
  };
}
