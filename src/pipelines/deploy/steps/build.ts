/**
 * Deploy step `build`: builds the app's Dockerfile from the run's checkout, tags the image
 * `${registry}/${app}:${commitSha}` and pushes it. An image the registry already holds for that
 * commit is reused without building, which also makes a re-run after a crash cheap.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { NornError } from '../../../shared/errors.js';
import { repoPathProblem } from '../../../shared/spec/infraspec.js';
import { deployStep } from '../types.js';
import type { DockerDriver } from '../../../shared/drivers/docker.js';
import { ensureSource, pinnedSpec, requireDocker } from '../workspace.js';

const DEFAULT_DOCKERFILE = 'Dockerfile';

const outside = (requested: string, why: string) =>
  new NornError(
    'SPEC_INVALID',
    `build.dockerfile "${requested}" is refused: ${why}; it must name a file inside the repository`,
  );

const leaves = (rel: string) =>
  rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);

/**
 * Refuses a Dockerfile path that leaves the repository as written (checked before any work), by
 * the rule the infraspec schema applies to build.dockerfile.
 */
export function checkDockerfilePath(requested: unknown): asserts requested is string {
  if (typeof requested !== 'string' || requested === '' || requested.includes('\0')) {
    throw new NornError(
      'SPEC_INVALID',
      'build.dockerfile must be a non-empty path inside the repository',
    );
  }
  const why = repoPathProblem(requested, { file: true });
  if (why) throw outside(requested, why);
}

/**
 * The Dockerfile's path relative to `srcDir` after following symlinks: a link (or a linked
 * directory on the way) that leads out of the checkout would let a repository make the engine
 * read any file of the worker's disk, so the real path must stay inside the real source dir.
 */
export async function dockerfileInside(srcDir: string, requested: string): Promise<string> {
  checkDockerfilePath(requested);
  const root = await realpath(srcDir);
  const real = await realpath(path.resolve(srcDir, requested)).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR')
        throw new NornError(
          'SPEC_INVALID',
          `build.dockerfile "${requested}" does not exist in the repository`,
        );
      throw err;
    },
  );
  const rel = path.relative(root, real);
  if (rel === '' || leaves(rel))
    throw outside(requested, 'it resolves through a symlink to a file outside the repository');
  if (!(await stat(real)).isFile())
    throw new NornError('SPEC_INVALID', `build.dockerfile "${requested}" is not a file`);
  return rel.split(path.sep).join('/');
}

/**
 * `${registry}/${name}:${sha}`, reused when the registry has it already; otherwise built from
 * `dockerfile` (checked to stay inside the checkout `source` gives, fetched only then) with
 * `labels`, the engine's output in the step log, and pushed. On cancel the driver drops the tag an
 * aborted build may have set; a push cut short by cancel drops the local tag too, so no half-made
 * image is left under the name. The deploy's build and a stack's release build both use it.
 */
export async function buildAndPush(
  docker: DockerDriver,
  o: {
    name: string;
    sha: string;
    dockerfile: string;
    source: () => Promise<string>;
    labels: Record<string, string>;
    signal: AbortSignal;
    log: (line: string) => void;
  },
): Promise<{ imageRef: string; digest: string | null; reused: boolean }> {
  const imageRef = docker.imageRef(o.name, o.sha);
  if (await docker.registryHasImage(o.name, o.sha, o.signal)) {
    o.log(`${imageRef} is already in the registry; reusing it without a build`);
    return { imageRef, digest: null, reused: true };
  }
  const srcDir = await o.source();
  const dockerfile = await dockerfileInside(srcDir, o.dockerfile);
  o.log(`building ${imageRef} from ${dockerfile}`);
  await docker.build({
    contextDir: srcDir,
    dockerfile,
    tag: imageRef,
    labels: o.labels,
    signal: o.signal,
    onLine: o.log,
  });
  o.log(`pushing ${imageRef}`);
  try {
    const { digest } = await docker.push({ tag: imageRef, signal: o.signal, onLine: o.log });
    o.log(`pushed ${imageRef} (${digest})`);
    return { imageRef, digest, reused: false };
  } catch (err) {
    // The registry holds either the whole image (its manifest goes last) or nothing under the
    // tag; locally the cancelled tag goes, so a later build builds and pushes afresh.
    if (o.signal.aborted) await docker.removeImage(imageRef).catch(() => {});
    throw err;
  }
}

export const build = deployStep('build', {
  // Registry or engine hiccups (UNAVAILABLE) are retried; a failing Dockerfile fails at once.
  attempts: 2,
  backoffMs: 2_000,

  /** `${registry}/${app}:${sha}` with labels `norn.app` / `norn.commit` (buildAndPush). */
  async run(ctx, services) {
    const docker = requireDocker(services, 'build');
    const app = ctx.run.appId;
    const cloned = await ctx.output('clone');
    if (!cloned)
      throw new NornError(
        'INTERNAL',
        `run ${ctx.run.id} has no recorded clone output; the clone step must run first`,
      );
    const requested = pinnedSpec(ctx).build?.dockerfile ?? DEFAULT_DOCKERFILE;
    checkDockerfilePath(requested);
    return buildAndPush(docker, {
      name: app,
      sha: cloned.commitSha,
      dockerfile: requested,
      source: () => ensureSource(ctx, services),
      labels: { 'norn.app': app, 'norn.commit': cloned.commitSha },
      signal: ctx.signal,
      log: ctx.log,
    });
  },
});
