/** The types of feedback.ts, apart so that each provider's file can use them without a cycle. */

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

export interface CommitStatus {
  sha: string;
  state: CommitState;
  /** Names the check on the commit (`norn/plan/platform`): a later status of it replaces this. */
  context: string;
  description: string;
  targetUrl?: string;
}

export interface FeedbackClient {
  /** Edits the comment holding `marker` on the pull request, or creates it; `body` gets the marker. */
  upsertComment(o: {
    pullRequest: number;
    marker: string;
    body: string;
  }): Promise<{ id: number; created: boolean }>;
  setStatus(status: CommitStatus): Promise<void>;
}

/** What one provider does; createFeedback adds the marker search, retries and errors. */
export interface ForgeOps {
  listComments(pullRequest: number): Promise<Array<{ id: number; body: string }>>;
  createComment(pullRequest: number, body: string): Promise<number>;
  updateComment(pullRequest: number, id: number, body: string): Promise<void>;
  setStatus(status: CommitStatus): Promise<void>;
}

export interface ForgeTarget {
  repo: string;
  apiUrl: string;
  token: string;
}

export type FeedbackEnv = Readonly<Record<string, string | undefined>>;

export interface RetryOptions {
  /** Further attempts after a transient failure (5xx, 429, a dropped connection). */
  retries?: number;
  minTimeoutMs?: number;
}
