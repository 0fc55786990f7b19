/**
 * Values the deploy derives from a parsed infraspec: the port and health URL of each replica and
 * the port endpoints are served from. The schema checks a spec by calling these same functions, so
 * what registration accepted is exactly what the deploy computes.
 */

/** The part of a process these functions look at. */
export interface ProcessPorts {
  port?: number;
  replicas: number;
}

/** Host networking: replica `index` of a process with port P listens on P + index. */
export const replicaPort = (p: { port?: number }, index: number): number | undefined =>
  p.port === undefined ? undefined : p.port + index;

/** The first and last port a process's replicas listen on; undefined without a port or replicas. */
export function portRange(p: ProcessPorts): { first: number; last: number } | undefined {
  if (p.port === undefined || p.replicas < 1) return undefined;
  return { first: p.port, last: replicaPort(p, p.replicas - 1)! };
}

/** Where the healthy step probes a replica: its port on loopback, plus the health path. */
export const healthUrl = (port: number, path: string) => `http://127.0.0.1:${port}${path}`;

/**
 * The process endpoints are served from: `web` if it has a port and replicas, else the first
 * process that has both; undefined when none has.
 */
export function servingProcess<P extends ProcessPorts>(
  processes: Record<string, P>,
): [string, P] | undefined {
  const serving = Object.entries(processes).filter(([, p]) => portRange(p) !== undefined);
  return serving.find(([name]) => name === 'web') ?? serving[0];
}
