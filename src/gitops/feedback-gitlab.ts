/**
 * GitLab's side of feedback.ts: merge request notes and commit statuses. GitLab's states are
 * pending|running|success|failed|canceled: failure and error both become failed. System notes
 * ("added 1 commit") are never the plan comment. gitbeaker itself retries 429 and 502.
 */
import { Gitlab } from '@gitbeaker/rest';
import type { CommitState, ForgeOps, ForgeTarget } from './feedback-types.js';

const STATE: Record<CommitState, 'pending' | 'success' | 'failed'> = {
  pending: 'pending',
  success: 'success',
  failure: 'failed',
  error: 'failed',
};

export function gitlabOps({ repo, apiUrl, token }: ForgeTarget): ForgeOps {
  const api = new Gitlab({ host: apiUrl.replace(/\/+$/, ''), token });
  const project = /^[0-9]+$/.test(repo) ? Number(repo) : repo;
  return {
    async listComments(mr) {
      const notes = await api.MergeRequestNotes.all(project, mr, { perPage: 100 });
      return notes.filter((n) => !n.system).map((n) => ({ id: n.id, body: n.body ?? '' }));
    },
    async createComment(mr, body) {
      return (await api.MergeRequestNotes.create(project, mr, body)).id;
    },
    async updateComment(mr, id, body) {
      await api.MergeRequestNotes.edit(project, mr, id, { body });
    },
    async setStatus({ sha, state, context, description, targetUrl }) {
      await api.Commits.editStatus(project, sha, STATE[state], {
        name: context,
        description,
        ...(targetUrl ? { targetUrl } : {}),
      });
    },
  };
}
