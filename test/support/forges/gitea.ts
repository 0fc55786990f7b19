/**
 * A fake Gitea API v1 (issue comments and commit statuses), shaped by Gitea's swagger: GET/POST
 * /api/v1/repos/{owner}/{repo}/issues/{index}/comments (`page`, `limit`, Link and X-Total-Count
 * headers; at most 50 a page), PATCH /api/v1/repos/{owner}/{repo}/issues/comments/{id}, POST
 * /api/v1/repos/{owner}/{repo}/statuses/{sha}. The token comes as `Authorization: token <t>`;
 * without it 401. A missing field is 422, as Gitea's binding answers.
 */
import {
  field,
  ForgeData,
  hasToken,
  isText,
  match,
  paged,
  perPage,
  startForgeServer,
  type ForgeComment,
  type ForgeRequest,
  type ForgeResponse,
} from './common.js';

const STATES = ['pending', 'success', 'error', 'failure', 'warning'];
export const GITEA_BOT = 'norn-bot';

const notFound: ForgeResponse = {
  status: 404,
  body: { message: "The target couldn't be found.", errors: [] },
};
const required = (what: string): ForgeResponse => ({
  status: 422,
  body: { message: `[${what}]: Required`, url: 'https://gitea.example/api/swagger' },
});

const view = (c: ForgeComment, repo: string, index?: number) => ({
  id: c.id,
  html_url: `https://gitea.example/${repo}/pulls/${index ?? 0}#issuecomment-${c.id}`,
  pull_request_url: `https://gitea.example/${repo}/pulls/${index ?? 0}`,
  issue_url: '',
  user: { id: c.author.length, login: c.author },
  original_author: '',
  original_author_id: 0,
  body: c.body,
  assets: [],
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
});

export async function startFakeGitea(o: { token: string; repo: string }) {
  const data = new ForgeData();
  const comments = (req: ForgeRequest, base: string, index: number): ForgeResponse => {
    if (!data.hasPull(index)) return notFound;
    if (req.method === 'POST') {
      const body = field(req.body, 'body');
      if (!isText(body)) return required('Body');
      return { status: 201, body: view(data.add(index, body, GITEA_BOT), o.repo, index) };
    }
    if (req.method !== 'GET') return notFound;
    const all = data.comments(index);
    const page = paged(all, req, {
      baseUrl: base,
      pageParam: 'page',
      perPageParam: 'limit',
      perPage: perPage(req, 'limit', 30, 50),
    });
    return {
      status: 200,
      body: page.items.map((c) => view(c, o.repo, index)),
      headers: { 'x-total-count': String(all.length), ...(page.link ? { link: page.link } : {}) },
    };
  };
  const status = (req: ForgeRequest, sha: string): ForgeResponse => {
    if (req.method !== 'POST') return notFound;
    const state = field(req.body, 'state');
    if (state === undefined) return required('State');
    if (typeof state !== 'string' || !STATES.includes(state))
      return { status: 422, body: { message: `invalid state: ${String(state)}` } };
    const { id, ...s } = data.addStatus(
      sha,
      state,
      (field(req.body, 'context') as string | undefined) ?? 'default',
      req.body,
    );
    return {
      status: 201,
      body: {
        id,
        status: state,
        context: s.context,
        target_url: s.targetUrl,
        description: s.description,
      },
    };
  };
  const route = (req: ForgeRequest, base: string): ForgeResponse => {
    if (!hasToken(req.headers.authorization, o.token, ['token']))
      return { status: 401, body: { message: 'token is required', url: '' } };
    const list = match('/api/v1/repos/:owner/:repo/issues/:index/comments', req.path);
    const one = match('/api/v1/repos/:owner/:repo/issues/comments/:id', req.path);
    const st = match('/api/v1/repos/:owner/:repo/statuses/:sha', req.path);
    const at = list ?? one ?? st;
    if (!at || `${at.owner}/${at.repo}` !== o.repo) return notFound;
    if (list) return comments(req, base, Number(list.index));
    if (st) return status(req, st.sha!);
    const comment = data.find(Number(one!.id));
    if (req.method !== 'PATCH' || !comment) return notFound;
    const body = field(req.body, 'body');
    if (!isText(body)) return required('Body');
    comment.body = body;
    return { status: 200, body: view(comment, o.repo) };
  };
  const server = await startForgeServer(route);
  return { ...server, token: o.token, data };
}

export type FakeGitea = Awaited<ReturnType<typeof startFakeGitea>>;
