/**
 * Host networking: a container's port is the host's. A replica may only start on a port nothing
 * listens on, or its health probe would count whoever already serves there as the new replica
 * (norn's probes cannot tell two listeners on one port apart). The worker runs on the Docker host
 * (it probes replicas on 127.0.0.1 too), so it can try the port itself.
 */
import { createServer } from 'node:net';
import type Docker from 'dockerode';
import { NornError } from '../../errors.js';

/** The label a container's port is recorded under, so that a port in use can be named. */
export const PORT_LABEL = 'norn.port';

/** `unchecked`: the worker may not bind it (a privileged port without root), so it cannot tell. */
type Bound = 'free' | 'in-use' | 'unchecked' | 'unsupported';

const OUTCOME: Record<string, Bound> = { EADDRINUSE: 'in-use', EACCES: 'unchecked' };

function tryBind(port: number, host: string): Promise<Bound> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      resolve(OUTCOME[err.code ?? ''] ?? 'unsupported'),
    );
    // exclusive: never share the port with a cluster sibling; the probe wants it to itself.
    server.listen({ port, host, exclusive: true, ipv6Only: false }, () =>
      server.close(() => resolve('free')),
    );
  });
}

/**
 * True when no socket listens on `port`, on any address (or when the worker may not bind it). The dual-stack wildcard `::` conflicts
 * with every IPv4 and IPv6 listener on Linux; without IPv6, `0.0.0.0` covers IPv4.
 */
export async function portIsFree(port: number): Promise<boolean> {
  const dual = await tryBind(port, '::');
  const bound = dual === 'unsupported' ? await tryBind(port, '0.0.0.0') : dual;
  return bound !== 'in-use';
}

/** Who holds `port`, when it is a running container that recorded it (else undefined). */
async function portHolder(docker: Docker, port: number): Promise<string | undefined> {
  const found = await docker
    .listContainers({ filters: { label: [`${PORT_LABEL}=${port}`] } })
    .catch(() => []);
  const c = found[0];
  if (!c) return undefined;
  const name = (c.Names[0] ?? c.Id).replace(/^\//, '');
  const app = c.Labels?.['norn.app'];
  return app ? `container ${name} of app ${app}` : `container ${name}`;
}

/** CONFLICT naming the port (and its holder, when known) for the first port of `ports` in use. */
export async function assertPortsFree(
  docker: Docker,
  ports: readonly number[],
  starting: string,
): Promise<void> {
  for (const port of ports) {
    if (await portIsFree(port)) continue;
    const holder = await portHolder(docker, port);
    throw new NornError(
      'CONFLICT',
      `port ${port} is already in use on the Docker host${holder ? ` by ${holder}` : ' by a process norn did not start'}, so ${starting} cannot start there`,
      { details: { port } },
    );
  }
}
