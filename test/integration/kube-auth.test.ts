/**
 * How norn's kubernetes connection authenticates, against the fake cluster over HTTPS (its CA in
 * the kubeconfig): a bearer token, a client certificate the cluster's CA issued, and a certificate
 * the cluster does not trust (401, reported with the cluster's words, and not as "unreachable").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesTarget } from '../../src/targets/kubernetes.js';
import { createKubeConnection, loadKubeConfig } from '../../src/targets/kubernetes/connection.js';
import { startFakeKube, type FakeKube } from '../support/kube/server.js';

let kube: FakeKube;
beforeAll(async () => {
  kube = await startFakeKube();
});
afterAll(async () => {
  await kube?.close();
});

const connect = (path: string) =>
  createKubeConnection(loadKubeConfig({ KUBECONFIG: path, HOME: '/nonexistent' }), {
    retries: 0,
    minTimeoutMs: 1,
  });
const namespaces = async (path: string) => {
  const c = connect(path);
  const list = await c.call('listing namespaces', () => c.core.listNamespace());
  return list.items.map((n) => n.metadata?.name);
};

describe('kubernetes authentication', () => {
  it('verifies the cluster with its CA and authenticates with a bearer token', async () => {
    expect(await namespaces(kube.kubeconfigPath)).toContain('default');
  });

  it('authenticates with a client certificate (and no token)', async () => {
    expect(await namespaces(kube.certKubeconfigPath)).toContain('default');
    // The target works on such a config too: live() lists the app's objects.
    const target = createKubernetesTarget({ connect: () => connect(kube.certKubeconfigPath) });
    expect(await target.live('nobody')).toEqual({ units: [], schedules: [] });
  });

  it('a certificate the cluster does not trust is refused with its 401, not as unreachable', async () => {
    const err = await namespaces(kube.strangerKubeconfigPath).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 401 });
    const target = createKubernetesTarget({ connect: () => connect(kube.strangerKubeconfigPath) });
    const live = await target.live('nobody').catch((e: Error) => e);
    expect(live).toBeInstanceOf(Error);
    expect((live as Error).message).toMatch(/HTTP 401/);
    expect((live as Error).message).not.toMatch(/unreachable|cannot be reached/i);
  });
});
