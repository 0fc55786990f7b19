/**
 * What the fake forges share: an HTTP server on 127.0.0.1 that records every request, parses JSON
 * bodies, answers JSON, can fail the next requests on purpose (transient 5xx), and pages lists
 * with a Link header as GitHub, GitLab and Gitea do.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForgeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The parsed JSON body, undefined when there was none; the raw text when it is not JSON. */
  body: unknown;
}

export interface ForgeResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ForgeComment {
  id: number;
  body: string;
  author: string;
  system?: boolean;
}

export interface ForgeStatus {
  sha: string;
  state: string;
  context: string;
  description: string | null;
  targetUrl: string | null;
}

export interface FakeForgeServer {
  url: string;
  requests: ForgeRequest[];
  /** The next `count` requests answer `status` (a forge having a bad moment). */
  failNext(count: number, status?: number): void;
  close(): Promise<void>;
}

export async function startForgeServer(
  handle: (req: ForgeRequest, baseUrl: string) => ForgeResponse,
): Promise<FakeForgeServer> {
  const requests: ForgeRequest[] = [];
  let failing = { count: 0, status: 503 };
  let baseUrl = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', baseUrl);
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = undefined;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      const recorded = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
      };
      requests.push(recorded);
      let answer: ForgeResponse;
      if (failing.count > 0) {
        failing.count--;
        answer = { status: failing.status, body: { message: 'the forge is having a bad moment' } };
      } else {
        answer = handle(recorded, baseUrl);
      }
      res.writeHead(answer.status, {
        ...(answer.body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
        ...answer.headers,
      });
      res.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: baseUrl,
    requests,
    failNext(count, status = 503) {
      failing = { count, status };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * One page of `items` (1-based `page`), and the Link header pointing at the next and last pages
 * with the same query otherwise, as GitHub, GitLab and Gitea write it.
 */
export function paged<T>(
  items: readonly T[],
  req: ForgeRequest,
  o: { baseUrl: string; pageParam: string; perPageParam: string; perPage: number },
): { items: T[]; page: number; pages: number; link: string | undefined } {
  const page = Math.max(1, Number(req.query.get('page') ?? '1') || 1);
  const pages = Math.max(1, Math.ceil(items.length / o.perPage));
  const at = (n: number) => {
    const q = new URLSearchParams(req.query);
    q.set('page', String(n));
    q.set(o.perPageParam, String(o.perPage));
    return `<${o.baseUrl}${req.path}?${q.toString()}>`;
  };
  const links: string[] = [];
  if (page < pages) links.push(`${at(page + 1)}; rel="next"`, `${at(pages)}; rel="last"`);
  if (page > 1) links.push(`${at(1)}; rel="first"`, `${at(page - 1)}; rel="prev"`);
  return {
    items: items.slice((page - 1) * o.perPage, page * o.perPage),
    page,
    pages,
    link: links.length ? links.join(', ') : undefined,
  };
}

/** `per_page`/`limit` from the query, bounded by the forge's maximum, or its default. */
export function perPage(req: ForgeRequest, param: string, byDefault: number, max: number): number {
  const n = Number(req.query.get(param));
  return Number.isInteger(n) && n > 0 ? Math.min(n, max) : byDefault;
}

/** Path segments matched against a pattern such as `/repos/:owner/:repo/issues/:n/comments`. */
export function match(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i]!.startsWith(':')) params[want[i]!.slice(1)] = decodeURIComponent(got[i]!);
    else if (want[i] !== got[i]) return undefined;
  }
  return params;
}

/** Unrelated comments by people, so a marker search must really page through them. */
export const chatter = (n: number) =>
  Array.from({ length: n }, (_, i) => `comment ${i + 1}: looks good, but see line ${i * 7}`);

/** A fake forge's data: comments per pull request (by number) and commit statuses. */
export class ForgeData {
  private readonly byPull = new Map<number, ForgeComment[]>();
  readonly statuses: ForgeStatus[] = [];
  private nextId = 9000;

  /** Opens pull request `n` with these comments (from people other than norn's bot). */
  seed(n: number, bodies: readonly string[], author = 'reviewer'): void {
    const list = this.byPull.get(n) ?? [];
    for (const body of bodies) list.push({ id: this.nextId++, body, author });
    this.byPull.set(n, list);
  }

  hasPull(n: number): boolean {
    return this.byPull.has(n);
  }

  comments(n: number): ForgeComment[] {
    return this.byPull.get(n) ?? [];
  }

  add(n: number, body: string, author: string, system = false): ForgeComment {
    const comment = { id: this.nextId++, body, author, ...(system ? { system } : {}) };
    this.byPull.get(n)!.push(comment);
    return comment;
  }

  /** The comment with this id (on pull request `n`, when given), to edit in place. */
  find(id: number, n?: number): ForgeComment | undefined {
    const lists = n === undefined ? [...this.byPull.values()] : [this.comments(n)];
    return lists.flat().find((c) => c.id === id);
  }

  /** Records a status from a request body (`target_url`, `description`), with its context. */
  addStatus(
    sha: string,
    state: string,
    context: string,
    body: unknown,
  ): ForgeStatus & { id: number } {
    const s = {
      sha,
      state,
      context,
      description: (field(body, 'description') as string | undefined) ?? null,
      targetUrl: (field(body, 'target_url') as string | undefined) ?? null,
    };
    this.statuses.push(s);
    return { ...s, id: this.nextId++ };
  }
}

/** Whether `header` carries `token` in one of the schemes the forge accepts. */
export function hasToken(
  header: string | string[] | undefined,
  token: string,
  schemes: readonly string[],
): boolean {
  const value = Array.isArray(header) ? header[0] : header;
  const m = /^(\S+)\s+(.+)$/.exec(value ?? '');
  return !!m && schemes.includes(m[1]!.toLowerCase()) && m[2] === token;
}

export const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

export const field = (body: unknown, key: string): unknown =>
  typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
