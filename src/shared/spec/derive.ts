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

/**
 * The host port a process is served on: its `port`, where the Docker host's ingress proxy
 * listens for it (its replicas listen on ports of their own behind the proxy, however many there
 * are). Undefined without a port or replicas.
 */
export function servedPort(p: ProcessPorts): number | undefined {
  return p.port === undefined || p.replicas < 1 ? undefined : p.port;
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
  const serving = Object.entries(processes).filter(([, p]) => servedPort(p) !== undefined);
  return serving.find(([name]) => name === 'web') ?? serving[0];
}
