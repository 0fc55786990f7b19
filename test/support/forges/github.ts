/**
 * A fake GitHub REST API (issue comments and commit statuses), shaped by GitHub's docs: a pull
 * request's comments are its issue's (GET/POST /repos/{owner}/{repo}/issues/{n}/comments, PATCH
 * /repos/{owner}/{repo}/issues/comments/{id}), 30 a page by default and at most 100 (`per_page`,
 * `page`, a Link header); statuses are POST /repos/{owner}/{repo}/statuses/{sha}. A missing or
 * wrong token is 401 "Bad credentials", a missing body or an unknown state 422.
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

const DOCS = 'https://docs.github.com/rest';
const STATES = ['error', 'failure', 'pending', 'success'];
export const GITHUB_BOT = 'norn-bot';

const notFound: ForgeResponse = {
  status: 404,
  body: { message: 'Not Found', documentation_url: DOCS },
};
const invalid = (message: string): ForgeResponse => ({
  status: 422,
  body: { message, documentation_url: DOCS },
});

const view = (c: ForgeComment, base: string, repo: string) => ({
  id: c.id,
  node_id: `IC_${c.id}`,
  url: `${base}/repos/${repo}/issues/comments/${c.id}`,
  html_url: `https://github.example/${repo}#issuecomment-${c.id}`,
  body: c.body,
  user: { login: c.author, id: c.author.length, type: 'User' },
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
  author_association: 'MEMBER',
});

export async function startFakeGitHub(o: { token: string; repo: string }) {
  const data = new ForgeData();
  const route = (req: ForgeRequest, base: string): ForgeResponse => {
    if (!hasToken(req.headers.authorization, o.token, ['token', 'bearer']))
      return { status: 401, body: { message: 'Bad credentials', documentation_url: DOCS } };
    const list = match('/repos/:owner/:repo/issues/:n/comments', req.path);
    const one = match('/repos/:owner/:repo/issues/comments/:id', req.path);
    const status = match('/repos/:owner/:repo/statuses/:sha', req.path);
    const at = list ?? one ?? status;
    if (!at || `${at.owner}/${at.repo}` !== o.repo) return notFound;
    const body = field(req.body, 'body');
    if (list) {
      const n = Number(list.n);
      if (!data.hasPull(n)) return notFound;
      if (req.method === 'GET') {
        const size = perPage(req, 'per_page', 30, 100);
        const page = paged(data.comments(n), req, {
          baseUrl: base,
          pageParam: 'page',
          perPageParam: 'per_page',
          perPage: size,
        });
        return {
          status: 200,
          body: page.items.map((c) => view(c, base, o.repo)),
          ...(page.link ? { headers: { link: page.link } } : {}),
        };
      }
      if (req.method !== 'POST') return notFound;
      if (!isText(body)) return invalid(`Invalid request.\n\n"body" wasn't supplied.`);
      return { status: 201, body: view(data.add(n, body, GITHUB_BOT), base, o.repo) };
    }
    if (one) {
      const comment = data.find(Number(one.id));
      if (req.method !== 'PATCH' || !comment) return notFound;
      if (!isText(body)) return invalid(`Invalid request.\n\n"body" wasn't supplied.`);
      comment.body = body;
      return { status: 200, body: view(comment, base, o.repo) };
    }
    return setStatus(req, status!.sha!);
  };
  const setStatus = (req: ForgeRequest, sha: string): ForgeResponse => {
    if (req.method !== 'POST') return notFound;
    if (!/^[0-9a-f]{40}$/.test(sha)) return invalid(`No commit found for SHA: ${sha}`);
    const state = field(req.body, 'state');
    if (typeof state !== 'string' || !STATES.includes(state))
      return invalid('Validation Failed: state is not included in the list');
    const { id, ...s } = data.addStatus(
      sha,
      state,
      (field(req.body, 'context') as string | undefined) ?? 'default',
      req.body,
    );
    return {
      status: 201,
      body: { id, ...s, target_url: s.targetUrl, created_at: '2026-01-01T00:00:00Z' },
    };
  };
  const server = await startForgeServer(route);
  return { ...server, token: o.token, data };
}

export type FakeGitHub = Awaited<ReturnType<typeof startFakeGitHub>>;
