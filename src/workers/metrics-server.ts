/**
 * A worker's own metrics (NORN_WORKER_METRICS_PORT): GET /metrics in Prometheus' text format with
 * the process's CPU, memory, event-loop lag and GC (prom-client's defaults, `norn_worker_`
 * prefixed) and the steps it runs now. What the fleet does (runs, queues, steps) is the api's
 * /metrics, read from the shared database; this is what only the process itself knows. It needs
 * the api token unless NORN_METRICS_PUBLIC=true, as the api's does.
 */
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { presentedToken, tokenMatches } from '../api/auth.js';
import type { Logger } from '../shared/logger.js';
import type { ActiveSteps } from './active.js';

export interface WorkerMetricsOptions {
  port: number;
  host: string;
  apiToken: string | undefined;
  public: boolean;
  workerId: string;
  active: Pick<ActiveSteps, 'size'>;
  log: Logger;
}

export async function startWorkerMetrics(
  o: WorkerMetricsOptions,
): Promise<{ port: number; close(): Promise<void> }> {
  const registry = new Registry();
  registry.setDefaultLabels({ worker: o.workerId });
  collectDefaultMetrics({ register: registry, prefix: 'norn_worker_' });
  new Gauge({
    name: 'norn_worker_active_steps',
    help: 'Steps this worker process is running now.',
    registers: [registry],
    collect() {
      this.set(o.active.size);
    },
  });
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://worker').pathname;
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: { code: 'NOT_FOUND', message: 'only GET /metrics is here' } }),
      );
      return;
    }
    if (!o.public && !tokenMatches(o.apiToken, presentedToken(req.headers.authorization))) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(
        JSON.stringify({
          error: { code: 'UNAUTHORIZED', message: 'a valid api token is required' },
        }),
      );
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (err: Error) => {
        o.log.warn({ err }, 'worker metrics failed');
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  o.log.info({ port }, 'worker metrics listening');
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
