/**
 * An infrastructure repository for the GitOps tests: a git repo of its own with one stack of
 * local_file resources (what the tofu stand-in manages) whose files live in `infra`, a directory
 * of the test's own: the "infrastructure" a drift check compares with the code.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface InfraRepo {
  url: string;
  dir: string;
  infra: string;
  /** Writes the stack's files (`resources`: name → content) on `branch` and commits; the new SHA. */
  commit(branch: string, resources: Record<string, string>, message?: string): string;
  /** Writes raw files into the stack directory on `branch` and commits. */
  commitRaw(branch: string, files: Record<string, string>, message?: string): string;
  /** Moves `branch` to `sha` (a merge that fast-forwards). */
  setBranch(branch: string, sha: string): void;
}

export const STACK_PATH = 'stacks/platform';

export function stackConfig(infra: string, resources: Record<string, string>): string {
  const files = Object.fromEntries(
    Object.entries(resources).map(([name, content]) => [
      name,
      { filename: join(infra, `${name}.txt`), content },
    ]),
  );
  return `${JSON.stringify({ resource: { local_file: files } }, null, 2)}\n`;
}

export function createInfraRepo(work: string): InfraRepo {
  const dir = join(work, 'infra-repo');
  const infra = join(work, 'infra');
  mkdirSync(join(dir, STACK_PATH), { recursive: true });
  mkdirSync(infra, { recursive: true });
  const git = (...args: string[]) =>
    execFileSync(
      'git',
      ['-C', dir, '-c', 'user.name=norn-test', '-c', 'user.email=test@norn.invalid', ...args],
      { encoding: 'utf8' },
    ).trim();
  git('init', '-q', '-b', 'main');
  const current = () => git('symbolic-ref', '--short', '-q', 'HEAD');
  const commitRaw = (branch: string, files: Record<string, string>, message = 'change') => {
    if (current() !== branch) {
      const exists = git('branch', '--list', branch) !== '';
      git('checkout', '-q', ...(exists ? [branch] : ['-b', branch]));
    }
    for (const [name, text] of Object.entries(files))
      writeFileSync(join(dir, STACK_PATH, name), text);
    git('add', '-A');
    git('commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  const repo: InfraRepo = {
    url: `file://${dir}`,
    dir,
    infra,
    commitRaw,
    commit: (branch, resources, message) =>
      commitRaw(branch, { 'main.tf.json': stackConfig(infra, resources) }, message),
    setBranch(branch, sha) {
      if (current() !== branch) git('checkout', '-q', branch);
      git('reset', '-q', '--hard', sha);
    },
  };
  return repo;
}
