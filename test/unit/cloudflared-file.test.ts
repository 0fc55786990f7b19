import { spawn } from 'node:child_process';
import {
  chmod,
  lstat,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  listIngress,
  removeAppIngress,
  restartTunnel,
  setAppIngress,
  updateIngressFile,
} from '../../src/shared/drivers/cloudflared.js';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'norn-cloudflared-'));
  file = join(dir, 'config.yml');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const route = (app: string) => ({
  hostname: `${app}.example.org`,
  service: 'http://127.0.0.1:3000',
});
const setApp = (app: string) => (text: string) => setAppIngress(text, app, [route(app)]);
const INITIAL =
  'tunnel: t\n# operator rule\ningress:\n  - hostname: a.example.com\n    service: http://localhost:1\n  - service: http_status:404\n';

describe('updateIngressFile', () => {
  it('creates a missing file, then re-applying changes nothing', async () => {
    expect(await updateIngressFile(file, setApp('web'))).toEqual({ changed: true });
    const text = await readFile(file, 'utf8');
    expect(listIngress(text)).toEqual([
      { ...route('web'), app: 'web' },
      { service: 'http_status:404' },
    ]);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    const before = await stat(file);
    expect(await updateIngressFile(file, setApp('web'))).toEqual({ changed: false });
    expect(await readFile(file, 'utf8')).toBe(text);
    expect((await stat(file)).ino).toBe(before.ino); // not even rewritten
    expect(await readdir(dir)).toEqual(['config.yml']); // no lock or temp file left behind
  });

  it('does not create the file for an edit that changes nothing', async () => {
    expect(await updateIngressFile(file, (t) => removeAppIngress(t, 'web'))).toEqual({
      changed: false,
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps the file mode and the operator content', async () => {
    await writeFile(file, INITIAL);
    await chmod(file, 0o640);
    await updateIngressFile(file, setApp('web'));
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# operator rule');
    expect(listIngress(text).map((r) => r.hostname ?? 'catch-all')).toEqual([
      'a.example.com',
      'web.example.org',
      'catch-all',
    ]);
  });

  it('loses nothing when 20 edits for 20 apps run at once', async () => {
    await writeFile(file, INITIAL);
    const apps = Array.from({ length: 20 }, (_, i) => `app${i}`);
    const results = await Promise.all(apps.map((app) => updateIngressFile(file, setApp(app))));
    expect(results.every((r) => r.changed)).toBe(true);
    const rules = listIngress(await readFile(file, 'utf8'));
    expect(
      rules
        .filter((r) => r.app)
        .map((r) => r.app)
        .sort(),
    ).toEqual([...apps].sort());
    expect(rules[0]?.hostname).toBe('a.example.com');
    expect(rules.at(-1)).toEqual({ service: 'http_status:404' });
    expect(await readdir(dir)).toEqual(['config.yml']);
  });

  it('loses nothing when several processes edit at once', async () => {
    await writeFile(file, INITIAL);
    const module = resolve('src/shared/drivers/cloudflared.ts');
    const script = `
      import { setAppIngress, updateIngressFile } from ${JSON.stringify(module)};
      const [file, worker] = process.argv.slice(-2);
      for (let i = 0; i < 5; i++) {
        const app = 'w' + worker + 'a' + i;
        await updateIngressFile(file, (t) => setAppIngress(t, app, [{ hostname: app + '.example.org', service: 'http://127.0.0.1:1' }]));
      }`;
    const scriptFile = join(dir, 'worker.mts');
    await writeFile(scriptFile, script);
    const runs = [0, 1, 2, 3].map(
      (w) =>
        new Promise<number | null>((done) => {
          const child = spawn(process.execPath, ['--import', 'tsx', scriptFile, file, String(w)], {
            stdio: 'inherit',
          });
          child.on('close', done);
        }),
    );
    expect(await Promise.all(runs)).toEqual([0, 0, 0, 0]);
    const apps = listIngress(await readFile(file, 'utf8')).flatMap((r) => (r.app ? [r.app] : []));
    expect(apps).toHaveLength(20);
  }, 60_000);

  it('edits the target of a symlinked config and keeps the link', async () => {
    const real = join(dir, 'real.yml');
    await writeFile(real, INITIAL);
    await symlink(real, file);
    await updateIngressFile(file, setApp('web'));
    expect((await lstat(file)).isSymbolicLink()).toBe(true);
    expect(listIngress(await readFile(real, 'utf8')).some((r) => r.app === 'web')).toBe(true);
  });

  it('takes over a stale lock left by a dead process', async () => {
    await writeFile(file, INITIAL);
    await writeFile(`${file}.lock`, '999999 dead');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${file}.lock`, old, old);
    expect(await updateIngressFile(file, setApp('web'), { lockTimeoutMs: 2_000 })).toEqual({
      changed: true,
    });
    expect(await readdir(dir)).toEqual(['config.yml']);
  });

  it('waits for a live lock: TIMEOUT when it is not released, CANCELLED on abort', async () => {
    await writeFile(file, INITIAL);
    await writeFile(`${file}.lock`, 'someone else');
    await expect(
      updateIngressFile(file, setApp('web'), { lockTimeoutMs: 200 }),
    ).rejects.toMatchObject({
      code: 'TIMEOUT',
      retryable: true,
    });
    const started = Date.now();
    await expect(
      updateIngressFile(file, setApp('web'), { signal: AbortSignal.timeout(150) }),
    ).rejects.toMatchObject({
      code: 'CANCELLED',
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await readFile(file, 'utf8')).toBe(INITIAL);
    expect(await readFile(`${file}.lock`, 'utf8')).toBe('someone else'); // a live lock is never removed
  });

  it('removes temp files left by a worker killed mid-write', async () => {
    await writeFile(file, INITIAL);
    await writeFile(join(dir, '.config.yml.4242.0badc0de.tmp'), 'half a fi');
    await writeFile(join(dir, 'other.yml'), 'x: 1\n');
    await updateIngressFile(file, setApp('web'));
    expect((await readdir(dir)).sort()).toEqual(['config.yml', 'other.yml']);
  });

  it('releases the lock when the edit throws', async () => {
    await writeFile(file, 'ingress: {}\n');
    await expect(updateIngressFile(file, setApp('web'))).rejects.toMatchObject({
      code: 'SPEC_INVALID',
    });
    expect(await readdir(dir)).toEqual(['config.yml']);
  });

  it('reports a missing directory as a configuration problem', async () => {
    await expect(
      updateIngressFile(join(dir, 'nope', 'config.yml'), setApp('web')),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});

describe('restartTunnel', () => {
  it('runs the configured command', async () => {
    expect(await restartTunnel('["true"]')).toEqual({});
    const lines: string[] = [];
    await restartTunnel('["sh","-c","echo restarted"]', { onLine: (l) => lines.push(l) });
    expect(lines).toEqual(['restarted']);
  });

  it('fails with COMMAND_FAILED and the output tail on a non-zero exit', async () => {
    await expect(restartTunnel('["false"]')).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
    await expect(
      restartTunnel('["sh","-c","echo unit cloudflared not found >&2; exit 5"]'),
    ).rejects.toThrow(/exited with 5:\nunit cloudflared not found/);
  });

  it('skips when no command is configured and refuses a malformed one', async () => {
    for (const none of [undefined, '', '  ', '[]']) {
      expect(await restartTunnel(none)).toEqual({ skipped: 'no restart command configured' });
    }
    for (const bad of [
      'systemctl restart cloudflared',
      '{"cmd":"x"}',
      '["systemctl", 1]',
      '[""]',
    ]) {
      await expect(restartTunnel(bad)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    }
  });

  it('stops the command promptly on abort', async () => {
    const started = Date.now();
    await expect(
      restartTunnel('["sleep","30"]', { signal: AbortSignal.timeout(100) }),
    ).rejects.toMatchObject({
      code: 'CANCELLED',
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
