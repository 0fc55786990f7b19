/**
 * Ports are owned. On the docker target every app shares one host network, and a process with
 * port P is served on P by the host's ingress proxy (its replicas listen on free ports of
 * NORN_DOCKER_REPLICA_PORTS behind it, however many there are); two apps claiming one port would
 * have the proxy serve only one of them there. Registration (POST /api/apps) refuses a taken port
 * with a 409 naming the other app and process; submit checks again (an app registered before, or
 * a race), and refuses a port another route of the proxy or a foreign process holds.
 */
import { NornError } from '../../shared/errors.js';
import type { AppRecord } from '../../shared/store/apps.js';

/** One process's port on the host. */
export interface PortClaim {
  app: string;
  process: string;
  port: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The ports a spec claims on the Docker host: the served port of every long-running process with
 * a port and at least one replica (scheduled processes serve nothing). Tolerant of stored specs
 * of any age: it reads the fields, it does not validate them. Other targets claim nothing here.
 */
export function portClaims(app: string, spec: unknown): PortClaim[] {
  if (!isRecord(spec) || (spec.target ?? 'docker') !== 'docker' || !isRecord(spec.processes))
    return [];
  const claims: PortClaim[] = [];
  for (const [process, p] of Object.entries(spec.processes)) {
    if (!isRecord(p) || typeof p.port !== 'number' || typeof p.schedule === 'string') continue;
    const replicas = typeof p.replicas === 'number' ? p.replicas : 1;
    if (replicas < 1) continue;
    claims.push({ app, process, port: p.port });
  }
  return claims;
}

export interface PortConflict {
  port: number;
  mine: PortClaim;
  theirs: PortClaim;
}

/** Every port of `mine` that `theirs` claim too (or another of `mine`'s processes). */
export function portConflicts(mine: PortClaim[], theirs: PortClaim[]): PortConflict[] {
  const found: PortConflict[] = [];
  mine.forEach((m, i) => {
    for (const t of [...mine.slice(i + 1), ...theirs])
      if (m.port === t.port) found.push({ port: m.port, mine: m, theirs: t });
  });
  return found;
}

const describe = (c: PortConflict) =>
  `process ${c.mine.process} wants port ${c.port}, which ${
    c.theirs.app === c.mine.app ? '' : `app ${c.theirs.app}'s `
  }process ${c.theirs.process} is served on`;

/**
 * CONFLICT when a port of app `spec.name` is one another registered app on the Docker host is
 * served on, or another of its own processes; the message names each app, process and port.
 */
export function assertPortsFreeAmong(
  spec: { name: string },
  apps: ReadonlyArray<Pick<AppRecord, 'id' | 'spec'>>,
): void {
  const others = apps.filter((a) => a.id !== spec.name).flatMap((a) => portClaims(a.id, a.spec));
  const conflicts = portConflicts(portClaims(spec.name, spec), others);
  if (!conflicts.length) return;
  throw new NornError(
    'CONFLICT',
    `app ${spec.name} claims ports already taken on the Docker host (each process with a port is served on it by the host's ingress proxy): ${conflicts.map(describe).join('; ')}`,
    {
      details: {
        conflicts: conflicts.map((c) => ({
          port: c.port,
          process: c.mine.process,
          otherApp: c.theirs.app,
          otherProcess: c.theirs.process,
        })),
      },
    },
  );
}

/** The same check against what is registered now (submit's recheck). */
export async function assertPortsUnclaimed(
  apps: { specs(): Promise<Array<Pick<AppRecord, 'id' | 'spec'>>> },
  spec: { name: string },
): Promise<void> {
  assertPortsFreeAmong(spec, await apps.specs());
}
