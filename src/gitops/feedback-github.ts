/** GitHub's side of feedback.ts: issue comments (a pull request is an issue) and commit statuses. */
import { Octokit } from '@octokit/rest';
import type { ForgeOps, ForgeTarget } from './feedback-types.js';

const QUIET = { debug() {}, info() {}, warn() {}, error() {} };

export function githubOps({ repo, apiUrl, token }: ForgeTarget): ForgeOps {
  const [owner, name] = repo.split('/') as [string, string];
  const at = { owner, repo: name };
  const octokit = new Octokit({ auth: token, baseUrl: apiUrl.replace(/\/+$/, ''), log: QUIET });
  return {
    async listComments(pullRequest) {
      const all = await octokit.paginate(octokit.rest.issues.listComments, {
        ...at,
        issue_number: pullRequest,
        per_page: 100,
      });
      return all.map((c) => ({ id: c.id, body: c.body ?? '' }));
    },
    async createComment(pullRequest, body) {
      const { data } = await octokit.rest.issues.createComment({
        ...at,
        issue_number: pullRequest,
        body,
      });
      return data.id;
    },
    async updateComment(_pullRequest, id, body) {
      await octokit.rest.issues.updateComment({ ...at, comment_id: id, body });
    },
    async setStatus({ sha, state, context, description, targetUrl }) {
      await octokit.rest.repos.createCommitStatus({
        ...at,
        sha,
        state,
        context,
        description,
        ...(targetUrl ? { target_url: targetUrl } : {}),
      });
    },
  };
}
