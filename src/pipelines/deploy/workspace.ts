/**
 * Per-run working directories on the worker's disk: `${workDir}/${runId}/src` holds the clone (and
 * is the build context). Steps of one run may run on different workers, so every step that needs
 * the source calls `ensureSource`, which re-clones the recorded commit when this worker lacks it.
 * Also the small accessors every deploy step shares: the run's pinned spec and the Docker driver.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DockerDriver } from '../../shared/drivers/docker.js';
import { cloneAt } from '../../shared/drivers/git.js';
import { NornError } from '../../shared/errors.js';
import { runCommand } from '../../shared/exec.js';
import type { StepContext } from '../../queues/pipeline.js';
import type { DeployServices, Infraspec, ReadsOutputs } from './types.js';

export const runDir = (s: Pick<DeployServices, 'workDir'>, runId: string) =>
  resolve(s.workDir, runId);
export const sourceDir = (s: Pick<DeployServices, 'workDir'>, runId: string) =>
  join(runDir(s, runId), 'src');

/** The run's checkout at the commit `clone` resolved, cloning it again if this worker has none. */
export async function ensureSource(ctx: ReadsOutputs<'clone'>, s: DeployServices): Promise<string> {
  const cloned = await ctx.output('clone');
  if (!cloned)
    throw new NornError(
      'INTERNAL',
      `run ${ctx.run.id} has no recorded clone output; the clone step must run first`,
    );
  const dir = sourceDir(s, ctx.run.id);
  if (existsSync(join(dir, '.git'))) {
    const head = await runCommand(['git', '-C', dir, 'rev-parse', 'HEAD'], { signal: ctx.signal });
    if (head.code === 0 && head.stdout.trim() === cloned.commitSha) return dir;
  }
  ctx.log(`source of ${cloned.commitSha.slice(0, 12)} not on this worker; cloning it again`);
  await cloneAt({
    url: cloned.repoUrl,
    ref: cloned.commitSha,
    dir,
    auth: s.git,
    signal: ctx.signal,
    onLine: ctx.log,
  });
  return dir;
}

export async function removeRunDir(
  s: Pick<DeployServices, 'workDir'>,
  runId: string,
): Promise<string[]> {
  const dir = runDir(s, runId);
  if (!existsSync(dir)) return [];
  await rm(dir, { recursive: true, force: true });
  return [dir];
}

/**
 * The infraspec pinned when the run was requested. The api stores it parsed (defaults applied), but
 * a run may be requested with any object, so callers read its optional parts defensively.
 */
export function pinnedSpec(ctx: Pick<StepContext, 'run'>): Partial<Infraspec> {
  return ctx.run.spec as Partial<Infraspec>;
}

/** The Docker target's driver, or UNAVAILABLE when this worker has no engine configured. */
export function requireDocker(s: Pick<DeployServices, 'docker'>, step: string): DockerDriver {
  if (!s.docker) {
    throw new NornError(
      'UNAVAILABLE',
      `the ${step} step needs a Docker engine, and this worker has none configured (NORN_DOCKER_SOCKET)`,
    );
  }
  return s.docker;
}
