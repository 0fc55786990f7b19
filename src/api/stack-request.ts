/**
 * Requesting a stack's runs (review, release, drift-check) and an app's drift check: what the api's
 * routes, webhooks and the drift scheduler all do. A stack's runs are runs of its subject row
 * (005_gitops_runs.sql): `appId` is the stack's id, and the stack's spec is pinned on the run.
 */
import type { RunAccepted, RunService } from '../queues/runs.js';
import type { StackRecord } from '../shared/store/stacks.js';
import type { AppRecord } from '../shared/store/apps.js';
import type { ReviewParams } from '../pipelines/gitops/types.js';

type Runs = Pick<RunService, 'request'>;

export function requestReview(
  runs: Runs,
  stack: StackRecord,
  params: ReviewParams,
  requestedBy: string,
): Promise<RunAccepted> {
  return runs.request({
    appId: stack.id,
    pipeline: 'review',
    params: { ...params },
    spec: { ...stack.spec },
    requestedBy,
  });
}

export function requestRelease(
  runs: Runs,
  stack: StackRecord,
  commitSha: string | undefined,
  requestedBy: string,
): Promise<RunAccepted> {
  return runs.request({
    appId: stack.id,
    pipeline: 'release',
    params: commitSha ? { commitSha } : {},
    spec: { ...stack.spec },
    requestedBy,
  });
}

/** A drift check, coalesced: one already waiting for the subject is answered instead of a new one. */
export function requestDriftCheck(
  runs: Runs,
  subject: { kind: 'stack'; stack: StackRecord } | { kind: 'app'; app: AppRecord },
  requestedBy: string,
): Promise<RunAccepted> {
  const record = subject.kind === 'stack' ? subject.stack : subject.app;
  return runs.request({
    appId: record.id,
    pipeline: 'drift-check',
    params: { kind: subject.kind },
    spec: { ...record.spec },
    requestedBy,
  });
}
