/**
 * cloudflared as an operator deploys it in a cluster: namespace `cloudflared`, a ConfigMap
 * `cloudflared` holding `config.yaml`, and a Deployment `cloudflared` (what the forge and deploy
 * steps patch and restart, at their default NORN_CLOUDFLARED_* names).
 */
import type * as k8s from '@kubernetes/client-node';

export async function deployCloudflared(
  clients: { core: k8s.CoreV1Api; apps: k8s.AppsV1Api },
  configYaml: string,
): Promise<void> {
  const { core, apps } = clients;
  await core.createNamespace({ body: { metadata: { name: 'cloudflared' } } });
  await core.createNamespacedConfigMap({
    namespace: 'cloudflared',
    body: { metadata: { name: 'cloudflared' }, data: { 'config.yaml': configYaml } },
  });
  await apps.createNamespacedDeployment({
    namespace: 'cloudflared',
    body: {
      metadata: { name: 'cloudflared' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'cloudflared' } },
        template: {
          metadata: { labels: { app: 'cloudflared' } },
          spec: { containers: [{ name: 'cloudflared', image: 'cloudflare/cloudflared:2024.1' }] },
        },
      },
    },
  });
}
