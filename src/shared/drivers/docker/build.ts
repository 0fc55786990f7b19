/**
 * `docker build` through the engine API: sends the context (minus .dockerignore), streams the
 * output as lines, and on abort drops the connection, which makes the engine cancel the build and
 * remove its intermediate container. A tag that the aborted build may have set is removed again.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { NornError } from '../../errors.js';
import { redactText } from '../../exec.js';
import { splitImageRef } from './registry.js';
import { cancelled, engineError, ignoreStatus, throwIfAborted } from './engine-errors.js';
import { LineCollector, readProgress, type ProgressMessage } from './streams.js';

export interface BuildOptions {
  /** Directory sent to the engine as the build context. */
  contextDir: string;
  /** Path of the Dockerfile, relative to `contextDir` (or absolute inside it). */
  dockerfile: string;
  /** Full image reference to tag the result with, e.g. `127.0.0.1:5000/web:3f2a…`. */
  tag: string;
  labels?: Record<string, string>;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

/**
 * Every file and symlink under `dir`, relative and with forward slashes. Directories are left out
 * because the tar packer recurses into any directory it is given, which would pack files twice
 * (so an empty directory does not reach the build; COPY of one makes no difference).
 */
async function contextEntries(dir: string): Promise<string[]> {
  const found = await readdir(dir, { recursive: true, withFileTypes: true });
  return found
    .filter((d) => !d.isDirectory())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)).split(path.sep).join('/'))
    .sort();
}

async function checkContext(o: BuildOptions): Promise<string> {
  const info = await stat(o.contextDir).catch(() => null);
  if (!info?.isDirectory())
    throw new NornError('SPEC_INVALID', `build context ${o.contextDir} is not a directory`);
  const dockerfile = path.relative(o.contextDir, path.resolve(o.contextDir, o.dockerfile));
  if (dockerfile.startsWith('..') || path.isAbsolute(dockerfile)) {
    throw new NornError(
      'SPEC_INVALID',
      `Dockerfile ${o.dockerfile} lies outside the build context ${o.contextDir}`,
    );
  }
  const file = await stat(path.join(o.contextDir, dockerfile)).catch(() => null);
  if (!file?.isFile())
    throw new NornError('SPEC_INVALID', `Dockerfile ${dockerfile} not found in ${o.contextDir}`);
  return dockerfile.split(path.sep).join('/');
}

async function imageIdOf(docker: Docker, ref: string): Promise<string | null> {
  const info = await ignoreStatus(docker.getImage(ref).inspect());
  return info?.Id ?? null;
}

export async function buildImage(
  docker: Docker,
  o: BuildOptions,
  secrets: readonly string[],
): Promise<{ imageId: string }> {
  const what = `docker build of ${o.tag}`;
  throwIfAborted(o.signal, what);
  const dockerfile = await checkContext(o);
  const before = await imageIdOf(docker, o.tag).catch((err) => {
    throw engineError(err, what, secrets);
  });
  const lines = new LineCollector(secrets, o.onLine);
  let imageId: string | undefined;
  let failure: string | undefined;
  const onMessage = (m: ProgressMessage) => {
    if (m.stream !== undefined) lines.push(m.stream);
    else if (m.status) lines.line(m.id ? `${m.id}: ${m.status}` : m.status);
    if (m.aux?.ID) imageId = m.aux.ID;
    if (m.error || m.errorDetail) failure = m.errorDetail?.message ?? m.error;
  };

  try {
    const stream = await docker.buildImage(
      { context: o.contextDir, src: await contextEntries(o.contextDir) },
      {
        t: o.tag,
        dockerfile,
        labels: o.labels,
        rm: true,
        forcerm: true, // remove intermediate containers of failed steps too
        abortSignal: o.signal,
      },
    );
    await readProgress(stream, what, onMessage, o.signal);
  } catch (err) {
    if (o.signal?.aborted) {
      await dropTagIfNew(docker, o.tag, before);
      throw cancelled(what, o.signal);
    }
    throw buildFailed(what, redactText(engineError(err, what, secrets).message, secrets), lines);
  }
  lines.flush();
  if (failure !== undefined) throw buildFailed(what, redactText(failure, secrets), lines);
  imageId ??= (await imageIdOf(docker, o.tag)) ?? undefined;
  if (!imageId) throw buildFailed(what, 'the engine reported no image id', lines);
  return { imageId };
}

function buildFailed(what: string, reason: string, lines: LineCollector): NornError {
  const tail = lines.tail.slice(-20);
  return new NornError('STEP_FAILED', `${what} failed: ${reason}\n${tail.join('\n')}`, {
    details: { tail },
  });
}

/**
 * After an abort the engine may still have finished the last step and tagged the result; a tag
 * that now points somewhere else than before the build belongs to the aborted build and goes
 * (back to the image it named before, if any).
 */
async function dropTagIfNew(docker: Docker, tag: string, before: string | null): Promise<void> {
  try {
    const now = await imageIdOf(docker, tag);
    if (!now || now === before) return;
    await ignoreStatus(docker.getImage(tag).remove(), [404, 409]);
    if (before) {
      const { name, tag: version } = splitImageRef(tag);
      await docker.getImage(before).tag({ repo: name, tag: version });
    }
  } catch {
    /* best effort: the abort itself is what the caller needs to hear about */
  }
}
