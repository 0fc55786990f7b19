/** The services of the GitOps steps and hooks, apart so that the deploy services can hold them. */
import type { Alerter } from '../../shared/alerts.js';
import type { DriftStateStore } from '../../shared/store/drift-state.js';
import type { PlanArtifactStore } from '../../shared/store/plan-artifacts.js';
import type { StackStore } from '../../shared/store/stacks.js';

/** What the GitOps steps and hooks use (DeployServices.gitops). */
export interface GitopsServices {
  stacks: StackStore;
  plans: PlanArtifactStore;
  drift: DriftStateStore;
  /** NORN_TOFU_BIN. */
  tofuBin: string;
  /**
   * The environment tofu runs with (provider credentials, TF_VAR_*) and feedback, verify and
   * runner checks read their `tokenEnv` from: the worker's own.
   */
  env: Record<string, string | undefined>;
  /** NORN_PUBLIC_URL: where a plan comment's "full plan" link points. */
  publicUrl: string | undefined;
  alerts: Alerter;
}
