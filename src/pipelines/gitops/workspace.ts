/**
 * A GitOps run's checkout and tofu: the stack's repository at one commit in the run's own directory
 * (`${workDir}/${runId}/src`, cloned again by any worker that lacks it), tofu bound to the stack's
 * directory in it, and where the stack's state lives.
 *
 * State: a stack whose configuration declares a backend keeps its state there (the way to run
 * workers on several machines). One that declares none gets norn's local state,
 * `${workDir}/stack-state/<stack>/terraform.tfstate`, through an override file written into the
 * checkout (`norn_override.tf.json`, a `local` backend with that path): every run of the stack on
 * this worker's disk plans and applies against the same state, and takes the same lock.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cloneAt } from '../../shared/drivers/git.js';
import { NornError } from '../../shared/errors.js';
import { runCommand } from '../../shared/exec.js';
import type { StackSpec } from '../../shared/spec/stack.js';
import type { StepContext } from '../../queues/pipeline.js';
import { createTofu, type Tofu } from '../../gitops/tofu.js';
import type { DeployServices } from '../deploy/types.js';
import { sourceDir } from '../deploy/workspace.js';

const OVERRIDE_FILE = 'norn_override.tf.json';
/** No ref and no repo.branch: the remote's HEAD (its default branch), never an assumed `main`. */
const DEFAULT_BRANCH = 'HEAD';

type Ctx = Pick<StepContext, 'run' | 'signal' | 'log'>;

/** The stack spec the run was requested with (pinned at request time). */
export function stackSpec(ctx: Pick<StepContext, 'run'>): StackSpec {
  const spec = ctx.run.spec as Partial<StackSpec>;
  if (!spec.repo?.url || typeof spec.path !== 'string')
    throw new NornError(
      'SPEC_INVALID',
      `run ${ctx.run.id} carries no stack spec (repo.url and path); stack runs are requested with the stack's spec`,
    );
  return spec as StackSpec;
}

/** The ref a run of the stack checks out when it names no commit: its branch, else the remote HEAD. */
export const branchOf = (spec: StackSpec) => spec.repo.branch ?? DEFAULT_BRANCH;

const stateDir = (s: Pick<DeployServices, 'workDir'>, stack: string) =>
  resolve(s.workDir, 'stack-state', stack);

/**
 * The stack's directory in the run's checkout of `ref`: cloned when this worker has none, or has
 * another commit than `expectSha` (a later step on another worker). Returns it and the commit.
 */
export async function checkout(
  ctx: Ctx,
  s: DeployServices,
  ref: string,
  expectSha?: string,
): Promise<{ srcDir: string; stackDir: string; commitSha: string }> {
  const spec = stackSpec(ctx);
  const srcDir = sourceDir(s, ctx.run.id);
  const at = (commitSha: string) => ({ srcDir, stackDir: join(srcDir, spec.path), commitSha });
  if (expectSha && existsSync(join(srcDir, '.git'))) {
    const head = await runCommand(['git', '-C', srcDir, 'rev-parse', 'HEAD'], {
      signal: ctx.signal,
    });
    if (head.code === 0 && head.stdout.trim() === expectSha) return at(expectSha);
  }
  ctx.log(`checking out ${ref} of ${spec.repo.url}`);
  const { commitSha } = await cloneAt({
    url: spec.repo.url,
    ref: expectSha ?? ref,
    dir: srcDir,
    auth: s.git,
    signal: ctx.signal,
    onLine: ctx.log,
  });
  const dir = at(commitSha);
  if (!existsSync(dir.stackDir))
    throw new NornError(
      'SPEC_INVALID',
      `stack ${spec.name}: path "${spec.path}" does not exist at commit ${commitSha.slice(0, 12)}`,
    );
  return dir;
}

const BACKEND_HCL = /^\s*backend\s+"[^"]+"/m;

/** True when a root-module file of `dir` declares a backend (HCL `backend "x"` or JSON terraform.backend). */
async function declaresBackend(dir: string): Promise<boolean> {
  for (const name of await readdir(dir)) {
    if (name === OVERRIDE_FILE) continue;
    if (name.endsWith('.tf') || name.endsWith('.tofu')) {
      if (BACKEND_HCL.test(await readFile(join(dir, name), 'utf8'))) return true;
    } else if (name.endsWith('.tf.json') || name.endsWith('.tofu.json')) {
      try {
        const doc = JSON.parse(await readFile(join(dir, name), 'utf8')) as {
          terraform?: unknown;
        };
        const blocks = Array.isArray(doc.terraform) ? doc.terraform : [doc.terraform];
        if (blocks.some((b) => typeof b === 'object' && b !== null && 'backend' in b)) return true;
      } catch {
        // Not JSON: tofu's own validate reports it with its position.
      }
    }
  }
  return false;
}

/**
 * Points a stack without a backend at norn's local state (see the top of this file); a stack with
 * one keeps it. Returns which.
 */
async function prepareState(
  ctx: Ctx,
  s: DeployServices,
  stackDir: string,
): Promise<'local' | 'backend'> {
  if (await declaresBackend(stackDir)) return 'backend';
  const dir = stateDir(s, ctx.run.appId);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'terraform.tfstate');
  await writeFile(
    join(stackDir, OVERRIDE_FILE),
    `${JSON.stringify({ terraform: { backend: { local: { path } } } }, null, 2)}\n`,
  );
  return 'local';
}

/** tofu in the stack's directory, its output in the step's log, tokens kept out of it. */
function tofuIn(ctx: Ctx, s: DeployServices, stackDir: string): Tofu {
  const spec = stackSpec(ctx);
  const env = s.gitops.env;
  const secrets = [spec.feedback?.tokenEnv, ...(spec.verify ?? []).map((c) => c.runner?.tokenEnv)]
    .map((k) => (k ? env[k] : undefined))
    .filter((v): v is string => typeof v === 'string' && v.length > 0);
  return createTofu({
    bin: s.gitops.tofuBin,
    cwd: stackDir,
    env: env as NodeJS.ProcessEnv,
    signal: ctx.signal,
    onLine: (line) => ctx.log(line),
    redact: secrets,
  });
}

/** A checkout ready for plan or apply: state prepared and `tofu init` done. */
export async function initialized(
  ctx: Ctx,
  s: DeployServices,
  ref: string,
  expectSha?: string,
): Promise<{ tofu: Tofu; stackDir: string; commitSha: string; state: 'local' | 'backend' }> {
  const { stackDir, commitSha } = await checkout(ctx, s, ref, expectSha);
  const state = await prepareState(ctx, s, stackDir);
  const tofu = tofuIn(ctx, s, stackDir);
  const init = await tofu.init();
  if (!init.ok)
    throw new NornError('COMMAND_FAILED', `tofu init failed:\n${tail(init.output)}`, {
      details: { step: 'init' },
    });
  return { tofu, stackDir, commitSha, state };
}

/** The last lines of tofu's output, for an error message. */
export function tail(output: string, lines = 30): string {
  return output.trimEnd().split('\n').slice(-lines).join('\n');
}
