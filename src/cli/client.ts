/**
 * The CLI's HTTP client for the norn api. Failures become CliErrors with exit code 3 and a message
 * an operator can act on; the token only ever travels in the Authorization header.
 */
import type { ErrorBody } from '../shared/api/index.js';
import { EXIT, CliError, apiError, usageError } from './errors.js';

export interface ApiClientOptions {
  /** e.g. http://127.0.0.1:8080 (a path prefix is kept: http://host/norn). */
  baseUrl: string;
  token?: string;
  /** Aborts every request (Ctrl-C). */
  signal: AbortSignal;
  timeoutMs?: number;
}

export class ApiClient {
  readonly base: URL;
  private readonly token: string | undefined;
  private readonly signal: AbortSignal;
  private readonly timeoutMs: number;

  constructor(opts: ApiClientOptions) {
    this.base = parseBaseUrl(opts.baseUrl);
    this.token = opts.token || undefined;
    this.signal = opts.signal;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** The api's address as shown to the operator (never with credentials). */
  get display(): string {
    return `${this.base.protocol}//${this.base.host}${this.base.pathname.replace(/\/$/, '')}`;
  }

  get authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  url(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.base);
  }

  /** ws(s)://…/ws?query */
  wsUrl(query: Record<string, string | number | undefined>): URL {
    const url = this.url('ws');
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    for (const [k, v] of Object.entries(query))
      if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  private async request<T>(
    method: string,
    path: string,
    body?: Record<string, unknown>,
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        method,
        headers: {
          accept: 'application/json',
          ...this.authHeaders,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.any([this.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await res.text().catch(() => '');
    const parsed = parseJson(text);
    if (res.ok) {
      if (parsed === undefined)
        throw apiError(
          res.status,
          undefined,
          `the api at ${this.display} answered ${method} ${path} with something that is not JSON`,
        );
      return parsed as T;
    }
    throw this.answeredError(res, parsed);
  }

  private answeredError(res: Response, body: unknown): CliError {
    // Whatever answered may not be norn (a proxy's error page): every field is checked.
    const err = (body as Partial<ErrorBody> | undefined)?.error as
      Partial<ErrorBody['error']> | undefined;
    const code = typeof err?.code === 'string' ? err.code : undefined;
    const message =
      typeof err?.message === 'string' ? err.message : `${res.status} ${res.statusText}`.trim();
    if (res.status === 401) {
      return apiError(
        401,
        code ?? 'UNAUTHORIZED',
        `the api at ${this.display} refused the request: ${message} (401); set NORN_API_TOKEN or pass --token`,
      );
    }
    const { code: _c, message: _m, ...details } = err ?? {};
    return apiError(res.status, code, message, details);
  }

  /** Connection-level failures: refused, DNS, timeout, TLS. */
  unreachable(err: unknown): CliError {
    if (this.signal.aborted) return new CliError('CANCELLED', 'interrupted', EXIT.interrupted);
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const reason =
      e.name === 'TimeoutError'
        ? `no answer within ${Math.round(this.timeoutMs / 1000)}s`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
    return new CliError(
      'UNAVAILABLE',
      `cannot reach the norn api at ${this.display}: ${reason}`,
      EXIT.api,
    );
  }
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`--api must be an http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError(`--api must be an http(s) URL, got "${url.protocol}"`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.username = '';
  url.password = '';
  return url;
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
