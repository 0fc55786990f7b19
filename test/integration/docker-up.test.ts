/**
 * script/docker-up shares the machine with other checkouts: it must never stop a registry or an
 * engine it did not start. A second "checkout" (a copy of the script in a temp dir, with registry
 * state of its own, so another password) runs it while the shared htpasswd registry serves.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/shared/exec.js';
import {
  AUTH_USER,
  REPO_ROOT,
  authRegistry,
  authRegistryPassword,
  dockerUp,
} from '../support/docker/engine.js';

const listenerPid = (port: string) =>
  /pid=(\d+)/.exec(execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' }))?.[1];

async function v2Status(address: string, password: string): Promise<number> {
  const auth = Buffer.from(`${AUTH_USER}:${password}`).toString('base64');
  const res = await fetch(`http://${address}/v2/`, { headers: { authorization: `Basic ${auth}` } });
  return res.status;
}

/** Stops the registries the temp checkout started (their pids are in its shared state). */
async function stopStarted(shared: string): Promise<void> {
  const dir = path.join(shared, 'registry');
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!f.startsWith('pid-')) continue;
    const pid = Number((await readFile(path.join(dir, f), 'utf8')).trim());
    try {
      process.kill(pid);
    } catch {
      // already gone
    }
  }
}

describe('script/docker-up', () => {
  let dir: string;
  beforeAll(async () => {
    await dockerUp();
    dir = await mkdtemp(path.join(tmpdir(), 'norn-docker-up-'));
  });
  afterAll(async () => {
    await stopStarted(path.join(dir, 'shared'));
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves a registry it did not start running and serves its own on the next free port', async () => {
    const shared = authRegistry();
    const sharedPassword = await authRegistryPassword();
    const pidBefore = listenerPid(shared.split(':')[1]!);
    expect(pidBefore).toBeDefined();

    await mkdir(path.join(dir, 'script'));
    await copyFile(path.join(REPO_ROOT, 'script/docker-up'), path.join(dir, 'script/docker-up'));
    const { NORN_TEST_REGISTRY_PASSWORD: _ignored, ...env } = process.env;
    const result = await runCommand(['bash', path.join(dir, 'script/docker-up'), '--auth'], {
      cwd: dir,
      env: { ...env, NORN_TEST_REGISTRY_STATE: path.join(dir, 'shared') },
      tailLines: 40,
    });
    expect(result.code, result.tail.join('\n')).toBe(0);

    // The shared registry is the same process and still takes its own credentials.
    expect(listenerPid(shared.split(':')[1]!)).toBe(pidBefore);
    expect(await v2Status(shared, sharedPassword)).toBe(200);
    // The other checkout got a registry of its own elsewhere, with its own password.
    const mine = (await readFile(path.join(dir, '.norn/registry-auth/address'), 'utf8')).trim();
    const myPassword = await readFile(path.join(dir, '.norn/registry-auth/password'), 'utf8');
    expect(mine).not.toBe(shared);
    expect(await v2Status(mine, myPassword)).toBe(200);
    expect(await v2Status(shared, myPassword)).toBe(401);
  });
});
