/**
 * Feedback to the forge a stack lives on: one plan comment per pull (merge) request, created the
 * first time and edited in place afterwards (found again by a hidden marker), and commit statuses.
 * GitHub goes through @octokit/rest, GitLab through @gitbeaker/rest, Gitea through plain fetch
 * (feedback-*.ts); retries, errors and the token's handling are the same for all three, here.
 *
 * @example
 * const forge = createFeedback(stack.spec.feedback, process.env);
 * await forge.upsertComment({ pullRequest: 7, marker: planMarker(stack.id), body });
 * await forge.setStatus({ sha, state: 'success', context: 'norn/plan', description: 'no changes' });
 */
import pRetry from 'p-retry';
import { NornError, isNornError } from '../shared/errors.js';
import { redactText } from '../shared/exec.js';
import type { StackFeedback } from '../shared/spec/stack.js';
import { giteaOps } from './feedback-gitea.js';
import { githubOps } from './feedback-github.js';
import { gitlabOps } from './feedback-gitlab.js';
import type { FeedbackClient, FeedbackEnv, RetryOptions } from './feedback-types.js';

export type {
  CommitState,
  CommitStatus,
  FeedbackClient,
  FeedbackEnv,
  ForgeOps,
  ForgeTarget,
  RetryOptions,
} from './feedback-types.js';

/** The hidden line that marks a stack's plan comment. */
export const planMarker = (stack: string) => `<!-- norn:plan:${stack} -->`;

/** GitHub and Gitea cut a status description at 140 characters; GitLab takes more. */
const DESCRIPTION_MAX = 140;

const OPS = { github: githubOps, gitlab: gitlabOps, gitea: giteaOps } as const;

export function createFeedback(
  feedback: StackFeedback,
  env: FeedbackEnv,
  retry: RetryOptions = {},
): FeedbackClient {
  const token = env[feedback.tokenEnv];
  if (!token)
    throw new NornError(
      'UNAVAILABLE',
      `feedback to ${feedback.provider} needs a token: the environment variable ${feedback.tokenEnv} is not set`,
      { details: { tokenEnv: feedback.tokenEnv } },
    );
  const ops = OPS[feedback.provider]({ repo: feedback.repo, apiUrl: feedback.apiUrl, token });
  const call = <T>(what: string, fn: () => Promise<T>) =>
    retrying(fn, retry).catch((err: unknown) => {
      throw forgeError(err, { what, feedback, token });
    });
  return {
    async upsertComment({ pullRequest, marker, body }) {
      if (!marker.trim()) throw new NornError('INTERNAL', 'a plan comment needs a marker');
      const text = body.includes(marker) ? body : `${marker}\n${body}`;
      const comments = await call(`listing the comments of #${pullRequest}`, () =>
        ops.listComments(pullRequest),
      );
      const mine = comments.find((c) => c.body.includes(marker));
      if (mine) {
        await call(`editing comment ${mine.id} on #${pullRequest}`, () =>
          ops.updateComment(pullRequest, mine.id, text),
        );
        return { id: mine.id, created: false };
      }
      const id = await call(`commenting on #${pullRequest}`, () =>
        ops.createComment(pullRequest, text),
      );
      return { id, created: true };
    },
    async setStatus(status) {
      const description =
        status.description.length > DESCRIPTION_MAX
          ? `${status.description.slice(0, DESCRIPTION_MAX - 1)}…`
          : status.description;
      await call(`setting status ${status.context} on ${status.sha.slice(0, 12)}`, () =>
        ops.setStatus({ ...status, description }),
      );
    },
  };
}

/** An HTTP status from whichever client threw: octokit's `status`, gitbeaker's cause, ours. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { status?: unknown; cause?: { response?: { status?: unknown } } };
  if (typeof e?.status === 'number') return e.status;
  const nested = e?.cause?.response?.status;
  return typeof nested === 'number' ? nested : undefined;
}

/** Worth another try: the forge is failing or busy, or the connection broke before an answer. */
function transient(err: unknown): boolean {
  if (isNornError(err)) return false;
  const status = statusOf(err);
  if (status === undefined) return err instanceof TypeError; // fetch: "fetch failed"
  return status >= 500 || status === 429;
}

function retrying<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  return pRetry(fn, {
    retries: o.retries ?? 3,
    minTimeout: o.minTimeoutMs ?? 500,
    maxTimeout: 5_000,
    unref: true,
    shouldRetry: ({ error }) => transient(error),
  });
}

/**
 * One NornError for every client's failure. The forge's own words are kept (they say what was
 * wrong) with the token taken out; the client's error is not kept as the cause, since gitbeaker's
 * carries the request and its token header.
 */
function forgeError(
  err: unknown,
  o: { what: string; feedback: StackFeedback; token: string },
): NornError {
  if (isNornError(err)) return err;
  const { provider, repo, tokenEnv } = o.feedback;
  const status = statusOf(err);
  const said = redactText(String((err as Error)?.message ?? err), [o.token]).slice(0, 300);
  const where = `${provider} (${repo}), ${o.what}`;
  const details = { provider, repo, status: status ?? null };
  if (status === 401 || status === 403)
    return new NornError(
      'UNAVAILABLE',
      `${where}: the token in ${tokenEnv} was refused (${status}): ${said}`,
      { details },
    );
  if (status === 404)
    return new NornError(
      'NOT_FOUND',
      `${where}: not found (404); check feedback.repo, and that the token in ${tokenEnv} can see it`,
      { details },
    );
  if (status === undefined || transient(err))
    return new NornError(
      'UNAVAILABLE',
      `${where}: no answer after retries${status ? ` (${status})` : ''}: ${said}`,
      { retryable: true, details },
    );
  return new NornError('BAD_REQUEST', `${where}: refused (${status}): ${said}`, { details });
}
