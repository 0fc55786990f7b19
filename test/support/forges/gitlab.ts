/**
 * A fake GitLab REST API v4 (merge request notes and commit statuses), shaped by GitLab's docs:
 * GET/POST /projects/:id/merge_requests/:iid/notes, PUT …/notes/:note_id, POST
 * /projects/:id/statuses/:sha. `:id` is the numeric id or the URL-encoded path. Lists are 20 a
 * page by default, at most 100 (`per_page`, `page`), with x-page, x-next-page, x-total… headers
 * and a Link header. The token comes as PRIVATE-TOKEN or Bearer; without it 401. A missing
 * field is 400 "<field> is missing". Every merge request starts with a system note.
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

const STATES = ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'];
export const GITLAB_BOT = 'norn-bot';

const notFound: ForgeResponse = { status: 404, body: { message: '404 Not found' } };
const missing = (what: string): ForgeResponse => ({
  status: 400,
  body: { error: `${what} is missing` },
});

const view = (c: ForgeComment, iid: number) => ({
  id: c.id,
  type: null,
  body: c.body,
  author: { id: c.author.length, username: c.author, name: c.author },
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
  system: c.system ?? false,
  noteable_id: 100 + iid,
  noteable_type: 'MergeRequest',
  noteable_iid: iid,
  resolvable: false,
  confidential: false,
  internal: false,
});

export async function startFakeGitLab(o: { token: string; projectId: number; path: string }) {
  const data = new ForgeData();
  const authorized = (req: ForgeRequest) =>
    req.headers['private-token'] === o.token ||
    hasToken(req.headers.authorization, o.token, ['bearer']);
  const notes = (req: ForgeRequest, base: string, iid: number, noteId?: number): ForgeResponse => {
    const body = field(req.body, 'body');
    if (noteId !== undefined) {
      const note = data.find(noteId, iid);
      if (req.method !== 'PUT' || !note) return notFound;
      if (!isText(body)) return missing('body');
      note.body = body;
      return { status: 200, body: view(note, iid) };
    }
    if (req.method === 'POST') {
      if (!isText(body)) return missing('body');
      return { status: 201, body: view(data.add(iid, body, GITLAB_BOT), iid) };
    }
    if (req.method !== 'GET') return notFound;
    const all = data.comments(iid);
    const size = perPage(req, 'per_page', 20, 100);
    const page = paged(all, req, {
      baseUrl: base,
      pageParam: 'page',
      perPageParam: 'per_page',
      perPage: size,
    });
    return {
      status: 200,
      body: page.items.map((c) => view(c, iid)),
      headers: {
        'x-page': String(page.page),
        'x-per-page': String(size),
        'x-total': String(all.length),
        'x-total-pages': String(page.pages),
        'x-next-page': page.page < page.pages ? String(page.page + 1) : '',
        'x-prev-page': page.page > 1 ? String(page.page - 1) : '',
        ...(page.link ? { link: page.link } : {}),
      },
    };
  };
  const status = (req: ForgeRequest, sha: string): ForgeResponse => {
    if (req.method !== 'POST') return notFound;
    const state = field(req.body, 'state');
    if (state === undefined) return missing('state');
    if (typeof state !== 'string' || !STATES.includes(state))
      return { status: 400, body: { error: 'state does not have a valid value' } };
    const name = field(req.body, 'name') ?? field(req.body, 'context') ?? 'default';
    const { id, ...s } = data.addStatus(sha, state, String(name), req.body);
    const { state: st, targetUrl, ...rest } = s;
    return {
      status: 201,
      body: {
        id,
        ...rest,
        status: st,
        name: s.context,
        target_url: targetUrl,
        allow_failure: false,
      },
    };
  };
  const route = (req: ForgeRequest, base: string): ForgeResponse => {
    if (!authorized(req)) return { status: 401, body: { message: '401 Unauthorized' } };
    const list = match('/api/v4/projects/:id/merge_requests/:iid/notes', req.path);
    const one = match('/api/v4/projects/:id/merge_requests/:iid/notes/:note', req.path);
    const st = match('/api/v4/projects/:id/statuses/:sha', req.path);
    const at = list ?? one ?? st;
    if (!at || (at.id !== String(o.projectId) && at.id !== o.path)) return notFound;
    if (st) return status(req, st.sha!);
    const iid = Number(at.iid);
    if (!data.hasPull(iid)) return notFound;
    return notes(req, base, iid, one ? Number(one.note) : undefined);
  };
  const server = await startForgeServer(route);
  return {
    ...server,
    token: o.token,
    data,
    /** Opens merge request `iid` with a system note and these comments. */
    seed(iid: number, bodies: readonly string[]) {
      data.seed(iid, []);
      data.add(iid, 'added 1 commit', 'reviewer', true);
      data.seed(iid, bodies);
    },
  };
}

export type FakeGitLab = Awaited<ReturnType<typeof startFakeGitLab>>;
