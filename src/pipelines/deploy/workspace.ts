/**
 * Per-run working directories on the worker's disk: `${workDir}/${runId}/src` holds the clone (and
 * is the build context). Steps of one run may run on different workers, so every step that needs
 * the source calls `ensureSource`, which re-clones the recorded commit when this worker lacks it.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cloneAt } from '../../shared/drivers/git.js';
import { runCommand } from '../../shared/exec.js';
import type { StepContext } from '../../queues/pipeline.js';
import type { CloneOutput, DeployServices } from './types.js';

export const runDir = (s: Pick<DeployServices, 'workDir'>, runId: string) => resolve(s.workDir, runId);
export const sourceDir = (s: Pick<DeployServices, 'workDir'>, runId: string) => join(runDir(s, runId), 'src');

/** The run's checkout at the commit `clone` resolved, cloning it again if this worker has none. */
export async function ensureSource(ctx: StepContext, s: DeployServices): Promise<string> {
  const cloned = await ctx.output<CloneOutput>('clone');
  if (!cloned) throw new Error('the clone step has no recorded output');
  const dir = sourceDir(s, ctx.run.id);
  if (existsSync(join(dir, '.git'))) {
    const head = await runCommand(['git', '-C', dir, 'rev-parse', 'HEAD'], { signal: ctx.signal });
    if (head.code === 0 && head.stdout.trim() === cloned.commitSha) return dir;
  }
  ctx.log(`source of ${cloned.commitSha.slice(0, 12)} not on this worker; cloning it again`);
  await cloneAt({ url: cloned.repoUrl, ref: cloned.commitSha, dir, auth: s.git, signal: ctx.signal, onLine: ctx.log });
  return dir;
}

export async function removeRunDir(s: Pick<DeployServices, 'workDir'>, runId: string): Promise<string[]> {
  const dir = runDir(s, runId);
  if (!existsSync(dir)) return [];
  await rm(dir, { recursive: true, force: true });
  return [dir];
}
