/**
 * The forges' webhook payloads in one shape (pure: no I/O), so routing never looks at a provider's
 * own fields. Pushes and pull/merge requests are read; everything else (ping, issues, …) is 'other'.
 */

export const PROVIDERS = ['github', 'gitlab', 'gitea'] as const;
export type Provider = (typeof PROVIDERS)[number];

export interface RepoEvent {
  provider: Provider;
  kind: 'push' | 'pull_request' | 'other';
  /** The provider's event name as sent in its event header (`push`, `Push Hook`, …). */
  event: string;
  /** The repository's clone, ssh and web URLs as the payload gives them (not normalized). */
  repoUrls: string[];
  defaultBranch?: string;
  push?: {
    ref: string;
    branch?: string;
    tag?: string;
    deleted: boolean;
    after: string;
    before: string;
  };
  pullRequest?: {
    number: number;
    /** Normalized: opened | updated (new commits) | closed | merged | other. */
    action: 'opened' | 'updated' | 'closed' | 'merged' | 'other';
    headSha: string;
    baseSha?: string;
    headRef: string;
    baseRef: string;
    title?: string;
  };
}

type Obj = Record<string, unknown>;

const ZERO_SHA = /^0+$/;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const urls = (...vs: unknown[]) => [...new Set(vs.map(str).filter((u) => u !== undefined))];

/** Which kind an event header names, per provider. */
function kindOf(provider: Provider, event: string): RepoEvent['kind'] {
  const e = event.toLowerCase();
  if (provider === 'gitlab') {
    if (e === 'push hook') return 'push';
    if (e === 'merge request hook') return 'pull_request';
    return 'other';
  }
  if (e === 'push') return 'push';
  if (e === 'pull_request') return 'pull_request';
  return 'other';
}

/**
 * The event a delivery describes. `event` is the provider's event header (X-GitHub-Event,
 * X-Gitlab-Event, X-Gitea-Event). A payload lacking what its kind needs (a push without a ref or
 * SHA) becomes 'other', so it is recorded and starts nothing.
 */
export function toRepoEvent(provider: Provider, event: string, payload: unknown): RepoEvent {
  const body = obj(payload);
  const base: RepoEvent = { provider, kind: 'other', event, ...repository(provider, body) };
  const kind = kindOf(provider, event);
  if (kind === 'push') {
    const push = readPush(body);
    return push ? { ...base, kind, push } : base;
  }
  if (kind === 'pull_request') {
    const pullRequest = provider === 'gitlab' ? readMergeRequest(body) : readPullRequest(body);
    return pullRequest ? { ...base, kind, pullRequest } : base;
  }
  return base;
}

function repository(provider: Provider, body: Obj): Pick<RepoEvent, 'repoUrls' | 'defaultBranch'> {
  if (provider === 'gitlab') {
    const p = obj(body.project);
    const r = obj(body.repository);
    const defaultBranch = str(p.default_branch);
    return {
      repoUrls: urls(
        p.git_http_url,
        p.git_ssh_url,
        p.web_url,
        r.git_http_url,
        r.git_ssh_url,
        r.url,
        r.homepage,
      ),
      ...(defaultBranch ? { defaultBranch } : {}),
    };
  }
  const r = obj(body.repository);
  const defaultBranch = str(r.default_branch);
  return {
    repoUrls: urls(r.clone_url, r.ssh_url, r.html_url),
    ...(defaultBranch ? { defaultBranch } : {}),
  };
}

function readPush(body: Obj): RepoEvent['push'] | undefined {
  const ref = str(body.ref);
  const after = str(body.after);
  const before = str(body.before);
  if (!ref || !after || !before) return undefined;
  // GitHub says so (deleted: true); GitLab and Gitea only send an all-zero `after`.
  const deleted = body.deleted === true || ZERO_SHA.test(after);
  const branch = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : undefined;
  const tag = ref.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : undefined;
  return { ref, ...(branch ? { branch } : {}), ...(tag ? { tag } : {}), deleted, after, before };
}

const GITHUB_ACTIONS: Record<string, NonNullable<RepoEvent['pullRequest']>['action']> = {
  opened: 'opened',
  reopened: 'opened',
  synchronize: 'updated', // GitHub
  synchronized: 'updated', // Gitea
  closed: 'closed',
};

/** GitHub and Gitea: `pull_request` with head/base, `merged` set on a closed one that merged. */
function readPullRequest(body: Obj): RepoEvent['pullRequest'] | undefined {
  const pr = obj(body.pull_request);
  const head = obj(pr.head);
  const base = obj(pr.base);
  const number = typeof pr.number === 'number' ? pr.number : body.number;
  const headSha = str(head.sha);
  const headRef = str(head.ref);
  const baseRef = str(base.ref);
  if (typeof number !== 'number' || !headSha || !headRef || !baseRef) return undefined;
  const raw = str(body.action) ?? '';
  const action =
    raw === 'closed' && pr.merged === true ? 'merged' : (GITHUB_ACTIONS[raw] ?? 'other');
  const baseSha = str(base.sha);
  const title = str(pr.title);
  return {
    number,
    action,
    headSha,
    ...(baseSha ? { baseSha } : {}),
    headRef,
    baseRef,
    ...(title ? { title } : {}),
  };
}

const GITLAB_ACTIONS: Record<string, NonNullable<RepoEvent['pullRequest']>['action']> = {
  open: 'opened',
  reopen: 'opened',
  update: 'updated',
  close: 'closed',
  merge: 'merged',
};

/** GitLab's Merge Request Hook: `object_attributes`; an update without `oldrev` moved no code. */
function readMergeRequest(body: Obj): RepoEvent['pullRequest'] | undefined {
  const mr = obj(body.object_attributes);
  const headSha = str(obj(mr.last_commit).id);
  const headRef = str(mr.source_branch);
  const baseRef = str(mr.target_branch);
  if (typeof mr.iid !== 'number' || !headSha || !headRef || !baseRef) return undefined;
  const raw = str(mr.action) ?? '';
  const mapped = GITLAB_ACTIONS[raw] ?? 'other';
  const action = mapped === 'updated' && !str(mr.oldrev) ? 'other' : mapped;
  const title = str(mr.title);
  return { number: mr.iid, action, headSha, headRef, baseRef, ...(title ? { title } : {}) };
}
