/**
 * Gitea's side of feedback.ts, over its REST API with fetch: issue comments (a pull request is an
 * issue), paged with `page`/`limit` and followed by the Link header, and commit statuses (Gitea
 * takes GitHub's state words).
 */
import type { ForgeOps, ForgeTarget } from './feedback-types.js';

/** A Gitea answer that was not a success; `status` is what feedback.ts retries and words by. */
export class GiteaError extends Error {
  override readonly name = 'GiteaError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const PAGE = 50;
/** A bound on pages followed, far above any pull request's comments. */
const MAX_PAGES = 200;

export function giteaOps({ repo, apiUrl, token }: ForgeTarget): ForgeOps {
  const [owner, name] = repo.split('/').map(encodeURIComponent) as [string, string];
  const base = `${apiUrl.replace(/\/+$/, '')}/api/v1/repos/${owner}/${name}`;
  const request = async (method: string, url: string, body?: object) => {
    const res = await fetch(url, {
      method,
      headers: {
        authorization: `token ${token}`,
        accept: 'application/json',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new GiteaError(res.status, await giteaMessage(res));
    return res;
  };
  return {
    async listComments(index) {
      const out: Array<{ id: number; body: string }> = [];
      let url: string | undefined = `${base}/issues/${index}/comments?limit=${PAGE}&page=1`;
      for (let page = 0; url && page < MAX_PAGES; page++) {
        const res = await request('GET', url);
        const items = (await res.json()) as Array<{ id: number; body?: string }>;
        out.push(...items.map((c) => ({ id: c.id, body: c.body ?? '' })));
        url = nextLink(res.headers.get('link'));
      }
      return out;
    },
    async createComment(index, body) {
      const res = await request('POST', `${base}/issues/${index}/comments`, { body });
      return ((await res.json()) as { id: number }).id;
    },
    async updateComment(_index, id, body) {
      await request('PATCH', `${base}/issues/comments/${id}`, { body });
    },
    async setStatus({ sha, state, context, description, targetUrl }) {
      await request('POST', `${base}/statuses/${encodeURIComponent(sha)}`, {
        state,
        context,
        description,
        ...(targetUrl ? { target_url: targetUrl } : {}),
      });
    },
  };
}

/** The `rel="next"` URL of a Link header, if any. */
export function nextLink(header: string | null): string | undefined {
  for (const part of header?.split(',') ?? []) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

async function giteaMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const json = JSON.parse(text) as { message?: unknown };
    if (typeof json.message === 'string') return json.message;
  } catch {
    // not JSON: the text itself
  }
  return text.slice(0, 200) || res.statusText;
}
