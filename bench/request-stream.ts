/**
 * A steady, bounded stream of GET requests on loopback (bench/zero-downtime.ts and its short
 * version in test/integration/zero-downtime.test.ts): `concurrency` clients, each sending its next
 * request `intervalMs` after the previous one answered, over keep-alive connections.
 *
 * What counts as failed: no answer, an error, or any status but 200 with the expected body. One
 * retry is allowed, as HTTP clients make it for idempotent requests (Go's transport, which
 * cloudflared uses; browsers; Node's documented `request.reusedSocket` pattern): a GET whose
 * connection was closed or reset before any byte of an answer came (the proxy reloads its config:
 * it closes idle keep-alive connections, and hands its listening socket over) is sent once more on
 * a new connection. Those retries are counted apart, and a retry that fails is a failure.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface StreamResult {
  sent: number;
  ok: number;
  failed: number;
  /** Requests retried once on a new connection (a reused connection closed before answering). */
  retried: number;
  /** Latency of each answered request (ms), retries included in theirs. */
  latencies: number[];
  /** The first few failures, for messages. */
  failures: string[];
}

export interface StreamOptions {
  port: number;
  path?: string;
  concurrency: number;
  intervalMs: number;
  /** Whether a body counts as right (default: any). */
  accept?: (body: string) => boolean;
  timeoutMs?: number;
}

interface Answer {
  status: number;
  body: string;
}

function get(o: StreamOptions, agent: http.Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.get(
      {
        host: '127.0.0.1',
        port: o.port,
        path: o.path ?? '/',
        agent,
        timeout: o.timeoutMs ?? 10_000,
      },
      (res) => {
        answered = true;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException & { beforeAnswer?: boolean }) => {
      err.beforeAnswer = !answered;
      reject(err);
    });
  });
}

const closedBeforeAnswer = (err: NodeJS.ErrnoException & { beforeAnswer?: boolean }) =>
  err.beforeAnswer === true && (err.code === 'ECONNRESET' || err.message === 'socket hang up');

/** Runs the stream until `stop` resolves; then waits for the requests in flight. */
export async function requestStream(
  o: StreamOptions,
  stop: Promise<unknown>,
): Promise<StreamResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const r: StreamResult = { sent: 0, ok: 0, failed: 0, retried: 0, latencies: [], failures: [] };
  let stopped = false;
  void stop.finally(() => (stopped = true));
  const fail = (why: string) => {
    r.failed++;
    if (r.failures.length < 10) r.failures.push(why);
  };
  async function client() {
    while (!stopped) {
      const started = performance.now();
      r.sent++;
      try {
        let answer: Answer;
        try {
          answer = await get(o, agent);
        } catch (err) {
          if (!closedBeforeAnswer(err as NodeJS.ErrnoException)) throw err;
          r.retried++;
          answer = await get(o, false);
        }
        r.latencies.push(performance.now() - started);
        if (answer.status === 200 && (o.accept?.(answer.body) ?? true)) r.ok++;
        else fail(`HTTP ${answer.status}: ${answer.body.trim().slice(0, 80)}`);
      } catch (err) {
        fail((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, o.intervalMs));
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, client));
  agent.destroy();
  return r;
}
