/**
 * How the nomad target talks to Nomad (and Consul): their HTTP APIs, JSON both ways, over
 * node:http(s) so a CA file can be given for TLS. The Nomad token goes in `X-Nomad-Token`, the
 * Consul one in `X-Consul-Token`, and neither ever reaches a message: errors name the method,
 * the path and what the server said, never the headers. Reads are retried when the server
 * answers in passing (a reset connection, 502/503/504); writes are not (a register sent twice is
 * exactly what EnforceIndex protects against, and the target decides). A server that cannot be
 * reached is UNAVAILABLE naming its address; 403 is UNAVAILABLE naming the token's variable.
 *
 * Blocking queries: `get(path, {index, waitMs})` sends `?index=&wait=`, and the answer carries
 * `X-Nomad-Index` (Consul: `X-Consul-Index`), which the caller passes to the next query.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { NomadEnv } from '../../shared/config.js';
import { NornError } from '../../shared/errors.js';

export type { NomadEnv };

export interface ApiAnswer<T> {
  status: number;
  body: T;
  /** X-Nomad-Index / X-Consul-Index: what the next blocking query waits beyond. */
  index: number;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  /** Blocking query: answer once the index passes this (or waitMs elapsed). */
  index?: number;
  waitMs?: number;
  /** Statuses answered as values instead of errors (e.g. 404 for "no such job"). */
  accept?: number[];
}

/** One HTTP API (Nomad's or Consul's). */
export interface HttpApi {
  readonly name: 'Nomad' | 'Consul';
  readonly addr: string;
  request<T>(method: string, path: string, o?: RequestOptions): Promise<ApiAnswer<T>>;
}

const RETRIED = new Set([502, 503, 504]);
const READ_ATTEMPTS = 3;

interface ApiConfig {
  name: 'Nomad' | 'Consul';
  addr: string;
  token: string | undefined;
  tokenVar: string;
  caFile: string | undefined;
  /** Query parameters every request carries (Nomad's region and namespace). */
  always: Record<string, string | undefined>;
}

export function createHttpApi(c: ApiConfig): HttpApi {
  let base: URL;
  try {
    base = new URL(c.addr);
  } catch {
    throw new NornError('CONFIG_INVALID', `${c.name} address ${c.addr} is not a URL`);
  }
  const ca = c.caFile ? readFileSync(c.caFile) : undefined;
  const headerName = c.name === 'Nomad' ? 'X-Nomad-Token' : 'X-Consul-Token';
  const indexHeader = c.name === 'Nomad' ? 'x-nomad-index' : 'x-consul-index';

  function once<T>(method: string, path: string, o: RequestOptions): Promise<ApiAnswer<T>> {
    const url = new URL(path, base);
    for (const [k, v] of Object.entries({ ...c.always, ...o.query }))
      if (v !== undefined) url.searchParams.set(k, String(v));
    if (o.index !== undefined) url.searchParams.set('index', String(o.index));
    if (o.waitMs !== undefined) url.searchParams.set('wait', `${Math.ceil(o.waitMs)}ms`);
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    const lib = url.protocol === 'https:' ? https : http;
    // A blocking query is answered after up to wait (+ Nomad's jitter of wait/16): allow for it.
    const timeoutMs = (o.waitMs ?? 0) * 1.2 + 30_000;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method,
          ...(ca ? { ca } : {}),
          headers: {
            Accept: 'application/json',
            ...(payload !== undefined
              ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
              : {}),
            ...(c.token ? { [headerName]: c.token } : {}),
          },
          signal: o.signal,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            const index = Number(res.headers[indexHeader] ?? 0) || 0;
            if ((status >= 200 && status < 300) || o.accept?.includes(status)) {
              let body: unknown = null;
              if (text) {
                try {
                  body = JSON.parse(text);
                } catch {
                  body = text; // plain-text answers (Nomad's errors, some 200s)
                }
              }
              resolve({ status, body: body as T, index });
              return;
            }
            reject(answerError(c, method, url.pathname, status, text));
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)),
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (o.signal?.aborted) {
          reject(new NornError('CANCELLED', `${c.name} request ${method} ${url.pathname} stopped`));
          return;
        }
        reject(
          new NornError(
            'UNAVAILABLE',
            `${c.name} at ${c.addr} is unreachable (${method} ${url.pathname}: ${err.code ?? err.message})`,
            { retryable: true, cause: err },
          ),
        );
      });
      req.end(payload);
    });
  }

  return {
    name: c.name,
    addr: c.addr,
    async request<T>(method: string, path: string, o: RequestOptions = {}) {
      const attempts = method === 'GET' ? READ_ATTEMPTS : 1;
      for (let attempt = 1; ; attempt++) {
        try {
          return await once<T>(method, path, o);
        } catch (err) {
          // Retryable: an unreachable server, or 502/503/504 (answerError marks those).
          const again =
            attempt < attempts && !o.signal?.aborted && err instanceof NornError && err.retryable;
          if (!again) throw err;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    },
  };
}

/** What a non-2xx answer means, in words an operator can act on (never with the token). */
function answerError(
  c: ApiConfig,
  method: string,
  path: string,
  status: number,
  text: string,
): NornError {
  const said = text.trim().slice(0, 4_000);
  const details = { status, path, body: said };
  if (status === 403 || status === 401)
    return new NornError(
      'UNAVAILABLE',
      `${c.name} at ${c.addr} refused ${method} ${path} (${status} ${said || 'Permission denied'}): ${c.token ? `check that ${c.tokenVar} is a token with the needed policy` : `set ${c.tokenVar}`}`,
      { details },
    );
  return new NornError(
    status === 404 ? 'NOT_FOUND' : 'STEP_FAILED',
    `${c.name} answered ${method} ${path} with ${status}: ${said}`,
    { details, retryable: RETRIED.has(status) },
  );
}

export interface NomadConnection {
  nomad: HttpApi;
  /** Consul's API, when NORN_CONSUL_ADDR is set. */
  consul: HttpApi | undefined;
  /** Where services are registered: Consul when it is configured, else Nomad's own catalog. */
  serviceProvider: 'consul' | 'nomad';
  region: string | undefined;
  namespace: string | undefined;
  /** Whether deregistering also purges the job (NORN_NOMAD_PURGE). */
  purge: boolean;
}

/** The Nomad (and Consul) connection from the worker's environment. */
export function connectNomad(env: NomadEnv): NomadConnection {
  if (!env.NORN_NOMAD_ADDR)
    throw new NornError(
      'UNAVAILABLE',
      'the nomad target needs a Nomad cluster, and this worker has none: set NORN_NOMAD_ADDR (and NORN_NOMAD_TOKEN when ACLs are on)',
    );
  const region = env.NORN_NOMAD_REGION || undefined;
  const namespace = env.NORN_NOMAD_NAMESPACE || undefined;
  const nomad = createHttpApi({
    name: 'Nomad',
    addr: env.NORN_NOMAD_ADDR,
    token: env.NORN_NOMAD_TOKEN || undefined,
    tokenVar: 'NORN_NOMAD_TOKEN',
    caFile: env.NORN_NOMAD_CACERT || undefined,
    always: { region, namespace },
  });
  const consul = env.NORN_CONSUL_ADDR
    ? createHttpApi({
        name: 'Consul',
        addr: env.NORN_CONSUL_ADDR,
        token: env.NORN_CONSUL_TOKEN || undefined,
        tokenVar: 'NORN_CONSUL_TOKEN',
        caFile: env.NORN_CONSUL_CACERT || undefined,
        always: {},
      })
    : undefined;
  return {
    nomad,
    consul,
    serviceProvider: consul ? 'consul' : 'nomad',
    region,
    namespace,
    purge: env.NORN_NOMAD_PURGE === 'true',
  };
}
