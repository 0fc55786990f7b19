import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import { loadKubeConfig } from '../../src/targets/kubernetes/connection.js';

const dir = mkdtempSync(join(tmpdir(), 'kube-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A kubeconfig with one context `name` on `server` (and current-context `name`). */
function config(path: string, name: string, server: string): string {
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': name,
      clusters: [{ name, cluster: { server } }],
      users: [{ name, user: { token: 't' } }],
      contexts: [{ name, context: { cluster: name, user: name } }],
    }),
  );
  return path;
}

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a refusal');
};

describe('loadKubeConfig: the config found as kubectl finds it', () => {
  const a = config(join(dir, 'a'), 'a', 'https://a.example:6443');
  const b = config(join(dir, 'b'), 'b', 'https://b.example:6443');
  const home = join(dir, 'home');
  mkdirSync(join(home, '.kube'), { recursive: true });
  config(join(home, '.kube', 'config'), 'h', 'https://home.example:6443');

  it('takes KUBECONFIG first (a path list, merged, the first file’s current-context), then ~/.kube/config', () => {
    const kc = loadKubeConfig({ KUBECONFIG: [a, b].join(delimiter), HOME: home });
    expect(kc.getContexts().map((c) => c.name)).toEqual(['a', 'b']);
    expect(kc.getCurrentCluster()?.server).toBe('https://a.example:6443');
    expect(loadKubeConfig({ HOME: home }).getCurrentCluster()?.server).toBe(
      'https://home.example:6443',
    );
  });

  it('switches to the context NORN_KUBE_CONTEXT names, and refuses one the config lacks', () => {
    const kc = loadKubeConfig({ KUBECONFIG: [a, b].join(delimiter), NORN_KUBE_CONTEXT: 'b' });
    expect(kc.getCurrentCluster()?.server).toBe('https://b.example:6443');
    const err = refusal(() => loadKubeConfig({ KUBECONFIG: a, NORN_KUBE_CONTEXT: 'zz' }));
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(
      /names context zz, which .* does not have \(it has: a\)/,
    );
  });

  it('says what to set when there is no config at all, and why one cannot be read', () => {
    const none = refusal(() => loadKubeConfig({ HOME: join(dir, 'nobody') }));
    expect(isNornError(none) && none.code).toBe('UNAVAILABLE');
    expect((none as Error).message).toMatch(/needs a cluster config.*set KUBECONFIG/);
    const missing = refusal(() => loadKubeConfig({ KUBECONFIG: join(dir, 'missing') }));
    expect(isNornError(missing) && missing.code).toBe('UNAVAILABLE');
    expect((missing as Error).message).toMatch(/config from KUBECONFIG cannot be read: .*ENOENT/);
  });
});
