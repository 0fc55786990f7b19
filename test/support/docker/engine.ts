/**
 * Test support for the docker driver: brings up dockerd and the two local registries through
 * script/docker-up, makes busybox-based build contexts FROM scratch (no image can be pulled here),
 * and removes everything labelled `norn.test=1` afterwards.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { runCommand } from '../../../src/shared/exec.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const OPEN_REGISTRY = '127.0.0.1:5000';
export const AUTH_USER = 'norn';
export const TEST_LABELS = { 'norn.test': '1' } as const;
/** Statically linked, from Debian's busybox-static: runs in an image with nothing else in it. */
const BUSYBOX = '/bin/busybox';

/** Runs `script/docker-up --auth`; fails with its output when docker cannot be made to run. */
export async function dockerUp(): Promise<void> {
  const lines: string[] = [];
  const result = await runCommand(['bash', path.join(REPO_ROOT, 'script/docker-up'), '--auth'], {
    cwd: REPO_ROOT,
    tailLines: 60,
    onLine: (line) => lines.push(line),
  });
  if (result.code !== 0) {
    throw new Error(
      `script/docker-up --auth failed (exit ${result.code ?? result.signal}); Docker cannot run here:\n${lines.join('\n')}`,
    );
  }
}

/**
 * Where the htpasswd registry listens, as docker-up chose it: 127.0.0.1:5001 unless another
 * registry held that port (read after dockerUp() ran).
 */
export function authRegistry(): string {
  try {
    return readFileSync(path.join(REPO_ROOT, '.norn/registry-auth/address'), 'utf8').trim();
  } catch {
    return '127.0.0.1:5001';
  }
}

/** The password of the htpasswd registry, as docker-up chose it. */
export async function authRegistryPassword(): Promise<string> {
  const fromEnv = process.env.NORN_TEST_REGISTRY_PASSWORD;
  if (fromEnv) return fromEnv;
  return (await readFile(path.join(REPO_ROOT, '.norn/registry-auth/password'), 'utf8')).trim();
}

export const fakeSha = (): string => randomBytes(20).toString('hex');
export const uniqueName = (base: string): string => `${base}-${randomBytes(4).toString('hex')}`;

export interface BuildContext {
  dir: string;
  remove(): Promise<void>;
}

/**
 * A build context holding busybox and a Dockerfile FROM scratch whose first steps install the
 * busybox applets (/bin/sh and friends); `steps` are appended after that. `files` adds more files.
 */
export async function busyboxContext(
  steps: string[],
  files: Record<string, string> = {},
): Promise<BuildContext> {
  const dir = await mkdtemp(path.join(tmpdir(), 'norn-docker-ctx-'));
  await copyFile(BUSYBOX, path.join(dir, 'busybox'));
  const dockerfile = [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    ...steps,
  ];
  await writeFile(path.join(dir, 'Dockerfile'), `${dockerfile.join('\n')}\n`);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return check();
}

/** Removes every container and image labelled norn.test=1, plus the given image tags. */
export async function removeTestArtifacts(tags: readonly string[] = []): Promise<void> {
  const docker = new Docker();
  const label = Object.entries(TEST_LABELS).map(([k, v]) => `${k}=${v}`);
  for (const c of await docker.listContainers({ all: true, filters: { label } })) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {});
  }
  for (const tag of tags)
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => {});
  for (const image of await docker.listImages({ filters: { label } })) {
    await docker
      .getImage(image.Id)
      .remove({ force: true })
      .catch(() => {});
  }
}
