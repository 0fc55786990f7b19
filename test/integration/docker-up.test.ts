/**
 * script/docker-up shares the machine with other checkouts: it must never stop a registry or an
 * engine it did not start. Other "checkouts" (copies of the script in temp dirs) run it while the
 * machine's registries serve; they only ever start registries of their own (stopped afterwards),
 * and the engine case runs against a fake dockerd on PATH, never the machine's.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
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

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const stop = (pid: number) => {
  try {
    process.kill(pid);
  } catch {
    // already gone
  }
};

/** Stops the registries the temp checkouts started (their pids are in their shared state). */
async function stopStarted(shared: string): Promise<void> {
  const dir = path.join(shared, 'registry');
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (f.startsWith('pid-')) stop(Number((await readFile(path.join(dir, f), 'utf8')).trim()));
  }
}

/** A copy of script/docker-up in `dir`, as another checkout of the repository would have it. */
async function checkout(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'script'), { recursive: true });
  const script = path.join(dir, 'script/docker-up');
  await copyFile(path.join(REPO_ROOT, 'script/docker-up'), script);
  return script;
}

const { NORN_TEST_REGISTRY_PASSWORD: _ignored, ...baseEnv } = process.env;

async function runDockerUp(script: string, env: Record<string, string | undefined>) {
  const result = await runCommand(['bash', script, ...(env.AUTH ? ['--auth'] : [])], {
    cwd: path.dirname(path.dirname(script)),
    env: { ...baseEnv, ...env },
    tailLines: 40,
  });
  return { ...result, output: result.tail.join('\n') };
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

    const result = await runDockerUp(await checkout(dir), {
      AUTH: '1',
      NORN_TEST_REGISTRY_STATE: path.join(dir, 'shared'),
    });
    expect(result.code, result.output).toBe(0);

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

  it('a checkout with another password never changes a registry another checkout started', async () => {
    // Two checkouts share one registry state (as all checkouts of a machine do) but were given
    // different passwords: the second must neither restart the first one's registry nor rewrite
    // the htpasswd it serves (docker-registry re-reads it), so the first one's password works on.
    const shared = path.join(dir, 'shared-two');
    const first = await checkout(path.join(dir, 'first'));
    const second = await checkout(path.join(dir, 'second'));
    try {
      const a = await runDockerUp(first, {
        AUTH: '1',
        NORN_TEST_REGISTRY_STATE: shared,
        NORN_TEST_REGISTRY_PASSWORD: 'first-password',
      });
      expect(a.code, a.output).toBe(0);
      const firstAddress = (
        await readFile(path.join(dir, 'first/.norn/registry-auth/address'), 'utf8')
      ).trim();
      const firstPid = Number(listenerPid(firstAddress.split(':')[1]!));
      expect(alive(firstPid)).toBe(true);

      const b = await runDockerUp(second, {
        AUTH: '1',
        NORN_TEST_REGISTRY_STATE: shared,
        NORN_TEST_REGISTRY_PASSWORD: 'second-password',
      });
      expect(b.code, b.output).toBe(0);
      expect(b.output).not.toContain('restarting');

      // The first checkout's registry is the same process and still takes its password.
      expect(alive(firstPid)).toBe(true);
      expect(listenerPid(firstAddress.split(':')[1]!)).toBe(String(firstPid));
      expect(await v2Status(firstAddress, 'first-password')).toBe(200);
      const secondAddress = (
        await readFile(path.join(dir, 'second/.norn/registry-auth/address'), 'utf8')
      ).trim();
      expect(secondAddress).not.toBe(firstAddress);
      expect(await v2Status(secondAddress, 'second-password')).toBe(200);
    } finally {
      await stopStarted(shared);
    }
  });

  it('waits for an engine that runs but does not answer yet instead of starting another', async () => {
    // A fake engine on PATH: `dockerd` only notes that it was started, `docker info` answers from
    // its third call on (an engine still starting). The machine's engine is never involved.
    const bin = path.join(dir, 'engine-bin');
    const starts = path.join(dir, 'engine-starts');
    const calls = path.join(dir, 'engine-calls');
    await mkdir(bin, { recursive: true });
    await writeFile(
      path.join(bin, 'dockerd'),
      `#!/bin/bash\necho $$ >>'${starts}'\nwhile :; do sleep 1; done\n`,
    );
    await writeFile(
      path.join(bin, 'docker'),
      `#!/bin/bash\necho "$*" >>'${calls}'\n[ "$(wc -l <'${calls}')" -ge 3 ]\n`,
    );
    await chmod(path.join(bin, 'dockerd'), 0o755);
    await chmod(path.join(bin, 'docker'), 0o755);
    const engine = spawn(path.join(bin, 'dockerd'), { stdio: 'ignore' });
    const pidfile = path.join(dir, 'docker.pid');
    await writeFile(pidfile, String(engine.pid));
    const script = await checkout(path.join(dir, 'engine'));
    try {
      await expect.poll(async () => readFile(starts, 'utf8').catch(() => '')).toContain('\n');
      const result = await runDockerUp(script, {
        PATH: `${bin}:${process.env.PATH}`,
        NORN_DOCKERD_PIDFILE: pidfile,
        NORN_TEST_REGISTRY_STATE: path.join(dir, 'engine-shared'),
      });
      expect(result.code, result.output).toBe(0);
      expect(result.output).toContain(`dockerd (pid ${engine.pid}) runs but does not answer yet`);
      // Only the engine that was already there ever started; it still runs, its pid file stays.
      expect((await readFile(starts, 'utf8')).trim().split('\n')).toEqual([String(engine.pid)]);
      expect(alive(engine.pid!)).toBe(true);
      expect((await readFile(pidfile, 'utf8')).trim()).toBe(String(engine.pid));
    } finally {
      for (const pid of (await readFile(starts, 'utf8').catch(() => '')).split('\n'))
        if (pid.trim()) stop(Number(pid));
      await stopStarted(path.join(dir, 'engine-shared'));
    }
  });
});
