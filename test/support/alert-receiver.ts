/** A loopback endpoint for NORN_ALERT_WEBHOOK_URLS that keeps every alert it receives. */
import { createServer, type Server } from 'node:http';

export interface ReceivedAlert {
  kind: string;
  subject: string;
  summary: string;
  text: string;
  runId?: string;
  fingerprint?: string;
  details?: Record<string, unknown>;
}

export async function startAlertReceiver() {
  const alerts: ReceivedAlert[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      alerts.push(JSON.parse(body) as ReceivedAlert);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    alerts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
