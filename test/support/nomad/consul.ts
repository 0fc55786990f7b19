/**
 * The slice of Consul's HTTP API norn reads: the catalog and the health of services, for the
 * services of running allocations whose provider is `consul` (Nomad's default). One node,
 * the fake Nomad client's. A service's check passes once its allocation is healthy (a
 * deployment's health, or running when outside a deployment); `?passing` keeps only those.
 * Answers X-Consul-Index and, when a token is configured, refuses other tokens with 403
 * "ACL not found" and a missing one with 403 "Permission denied", as Consul does.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { node } from './sim.js';
import type { Store } from './store.js';
import { registrations } from './views.js';

export async function startFakeConsul(
  store: Store,
  token: string | undefined,
): Promise<{ addr: string; close: () => Promise<void> }> {
  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const send = (status: number, body: unknown): void => {
      res.setHeader('X-Consul-Index', String(store.tables.services));
      res.setHeader('X-Consul-KnownLeader', 'true');
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res
        .writeHead(status, {
          'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json',
        })
        .end(text);
    };
    const given = req.headers['x-consul-token'] ?? url.searchParams.get('token') ?? undefined;
    if (token !== undefined && given !== token) {
      return send(403, given ? 'ACL not found' : 'Permission denied');
    }
    const services = (name: string) =>
      registrations(store).filter(
        (r) => r.provider === 'consul' && r.ServiceName === decodeURIComponent(name),
      );
    let m: RegExpExecArray | null;
    if ((m = /^\/v1\/catalog\/service\/([^/]+)$/.exec(url.pathname))) {
      return send(
        200,
        services(m[1]!).map((r) => ({
          ID: node.ID,
          Node: node.Name,
          Address: node.Address,
          Datacenter: node.Datacenter,
          ServiceID: r.ID,
          ServiceName: r.ServiceName,
          ServiceAddress: r.Address,
          ServicePort: r.Port,
          ServiceTags: r.Tags,
          ServiceMeta: {},
          CreateIndex: r.CreateIndex,
          ModifyIndex: r.ModifyIndex,
        })),
      );
    }
    if ((m = /^\/v1\/health\/service\/([^/]+)$/.exec(url.pathname))) {
      const passing =
        url.searchParams.has('passing') && url.searchParams.get('passing') !== 'false';
      const entries = services(m[1]!)
        .filter((r) => !passing || r.healthy)
        .map((r) => ({
          Node: {
            ID: node.ID,
            Node: node.Name,
            Address: node.Address,
            Datacenter: node.Datacenter,
          },
          Service: {
            ID: r.ID,
            Service: r.ServiceName,
            Address: r.Address,
            Port: r.Port,
            Tags: r.Tags,
            Meta: {},
          },
          Checks: [
            {
              Node: node.Name,
              CheckID: 'serfHealth',
              Name: 'Serf Health Status',
              Status: 'passing',
              ServiceID: '',
            },
            {
              Node: node.Name,
              CheckID: `_nomad-check-${r.AllocID}`,
              Name: `service: "${r.ServiceName}" check`,
              Status: r.healthy ? 'passing' : 'critical',
              ServiceID: r.ID,
              ServiceName: r.ServiceName,
            },
          ],
        }));
      return send(200, entries);
    }
    send(404, 'Invalid URL');
  }
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
