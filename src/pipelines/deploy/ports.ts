/**
 * Ports are owned. On the docker target every app shares one host network, and a process with
 * port P and N replicas listens on P..P+N-1; two claims that overlap would have one app's health
 * probe accept the other's listener. Registration (POST /api/apps) refuses an overlap with a 409
 * naming the other app and port; submit checks again (an app registered before, or a race), and
 * the driver refuses to start a replica on a port something else listens on.
 */
import { NornError } from '../../shared/errors.js';
import type { AppRecord } from '../../shared/store/apps.js';

/** One process's ports on the host. */
export interface PortClaim {
  app: string;
  process: string;
  first: number;
  last: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The ports a spec claims on the Docker host: every long-running process with a port and at least
 * one replica (scheduled processes serve nothing). Tolerant of stored specs of any age: it reads
 * the fields, it does not validate them. Other targets claim nothing here.
 */
export function portClaims(app: string, spec: unknown): PortClaim[] {
  if (!isRecord(spec) || (spec.target ?? 'docker') !== 'docker' || !isRecord(spec.processes))
    return [];
  const claims: PortClaim[] = [];
  for (const [process, p] of Object.entries(spec.processes)) {
    if (!isRecord(p) || typeof p.port !== 'number' || typeof p.schedule === 'string') continue;
    const replicas = typeof p.replicas === 'number' ? p.replicas : 1;
    if (replicas < 1) continue;
    claims.push({ app, process, first: p.port, last: p.port + replicas - 1 });
  }
  return claims;
}

const range = (c: PortClaim) => (c.first === c.last ? `${c.first}` : `${c.first}-${c.last}`);

export interface PortConflict {
  port: number;
  mine: PortClaim;
  theirs: PortClaim;
}

/** Every overlap of `mine` with `theirs` (and of `mine`'s processes with each other). */
export function portConflicts(mine: PortClaim[], theirs: PortClaim[]): PortConflict[] {
  const found: PortConflict[] = [];
  mine.forEach((m, i) => {
    for (const t of [...mine.slice(i + 1), ...theirs]) {
      if (m.first <= t.last && t.first <= m.last)
        found.push({ port: Math.max(m.first, t.first), mine: m, theirs: t });
    }
  });
  return found;
}

const describe = (c: PortConflict) =>
  `process ${c.mine.process} (port ${range(c.mine)}) overlaps on port ${c.port} with ${
    c.theirs.app === c.mine.app ? '' : `app ${c.theirs.app}'s `
  }process ${c.theirs.process} (port ${range(c.theirs)})`;

/**
 * CONFLICT when app `spec.name`'s ports overlap those of another registered app on the Docker
 * host, or of its own processes; the message names each app, process and port.
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
    `app ${spec.name} claims ports already taken on the Docker host (a process with port P and N replicas uses P..P+N-1): ${conflicts.map(describe).join('; ')}`,
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
