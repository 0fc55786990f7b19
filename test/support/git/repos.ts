/** Real git repositories for driver tests, plus a `git` wrapper that records every command line. */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked, runCommand } from '../../../src/shared/exec.js';

const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'norn test',
  GIT_AUTHOR_EMAIL: 'test@norn.invalid',
  GIT_COMMITTER_NAME: 'norn test',
  GIT_COMMITTER_EMAIL: 'test@norn.invalid',
};

export async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await runChecked(['git', ...args], { cwd, env: GIT_ENV })).stdout.trim();
}

export interface FixtureRepo {
  /** Working repository (main checked out). */
  path: string;
  /** A bare copy of it (what servers serve). */
  bare: string;
  shas: {
    /** First commit on main: reachable, but not the tip of any branch or tag. */
    first: string;
    /** The commit the annotated tag v1.0 points at (also not a branch tip). */
    tagged: string;
    /** Tip of main. */
    main: string;
    /** Tip of branch feature/x, which forks from `tagged`. */
    feature: string;
  };
}

/**
 * main: first ─ tagged(v1.0) ─ main
 *                    └─ feature (branch feature/x)
 */
export async function makeFixtureRepo(parent: string, name = 'app'): Promise<FixtureRepo> {
  const path = join(parent, name);
  await mkdir(path, { recursive: true });
  await git(path, 'init', '-q', '-b', 'main');
  const commit = async (file: string, text: string, msg: string) => {
    await writeFile(join(path, file), text);
    await git(path, 'add', '--', file);
    await git(path, 'commit', '-q', '-m', msg);
    return git(path, 'rev-parse', 'HEAD');
  };
  const first = await commit('README.md', '# app\n', 'first');
  const tagged = await commit('VERSION', '1.0\n', 'release 1.0');
  await git(path, 'tag', '-a', 'v1.0', '-m', 'version 1.0');
  await git(path, 'checkout', '-q', '-b', 'feature/x');
  const feature = await commit('feature.txt', 'x\n', 'feature x');
  await git(path, 'checkout', '-q', 'main');
  const main = await commit('VERSION', '1.1-dev\n', 'start 1.1');
  const bare = join(parent, `${name}.git`);
  await git(parent, 'clone', '-q', '--bare', '--', path, bare);
  return { path, bare, shas: { first, tagged, main, feature } };
}

export interface GitSpy {
  /** Put this first on PATH so `git` resolves to the wrapper. */
  binDir: string;
  /** Every recorded argv of a `git` run, one string per run. */
  calls(): Promise<string[]>;
}

/** A `git` wrapper that appends its arguments to a log and then runs the real git. */
export async function makeGitSpy(dir: string): Promise<GitSpy> {
  const realGit = (await runChecked(['sh', '-c', 'command -v git'])).stdout.trim();
  const binDir = join(dir, 'spy-bin');
  const log = join(dir, 'git-calls.log');
  await mkdir(binDir, { recursive: true });
  await writeFile(log, '');
  const script = `#!/bin/sh\nprintf '%s\\n' "git $*" >> '${log}'\nexec '${realGit}' "$@"\n`;
  await writeFile(join(binDir, 'git'), script);
  await chmod(join(binDir, 'git'), 0o755);
  return {
    binDir,
    calls: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean),
  };
}

/** Every file under `dir` (recursively) whose bytes contain one of `needles`. */
export async function filesContaining(dir: string, needles: string[]): Promise<string[]> {
  const present = needles.filter((n) => n.length > 0);
  const res = await runCommand(['grep', '-rlF', ...present.flatMap((n) => ['-e', n]), '--', dir], {
    env: GIT_ENV,
  });
  if (res.code === 1) return []; // grep: no match
  if (res.code !== 0) throw new Error(`grep failed: ${res.tail.join('\n')}`);
  return res.stdout.split('\n').filter(Boolean);
}
