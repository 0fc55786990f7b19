/**
 * A pipeline is data: a name, a version, and ordered steps with their handlers. The engine runs
 * every pipeline the same way (src/queues/flow.ts, src/workers/processor.ts); deploy, forge,
 * teardown and the test pipelines differ only in their definitions.
 */
import type { RunCommandOptions, RunCommandResult } from '../shared/exec.js';
import { NornError } from '../shared/errors.js';
import type { PoolClient } from 'pg';
import type { ConcurrencyPolicy } from '../shared/store/runs.js';

export interface StepContext {
  run: {
    id: string;
    appId: string;
    sagaId: string;
    pipeline: string;
    version: string;
    params: Record<string, unknown>;
    /** The app spec pinned when the run was requested. */
    spec: Record<string, unknown>;
  };
  step: { name: string; index: number; total: number; attempt: number };
  /** Aborted on cancel, on worker shutdown, and when the run lost its app lease. Pass it on. */
  signal: AbortSignal;
  /** A line for the step's log (Bull Board's Logs tab and the worker log). */
  log(line: string): void;
  /** Output of an earlier step of this run (or of the run it resumes), or undefined. */
  output<T = unknown>(step: string): Promise<T | undefined>;
  outputs(): Promise<Record<string, unknown>>;
  /** runCommand bound to this step's signal: cancel reaches the program and its children. */
  exec(
    argv: readonly string[],
    options?: Omit<RunCommandOptions, 'signal'>,
  ): Promise<RunCommandResult>;
}

/** The moments of a run a pipeline may hook: admitted, and each way it can end. */
export type HookName = 'onStart' | 'onSucceed' | 'onFail' | 'onCancel';
export const HOOK_NAMES: readonly HookName[] = ['onStart', 'onSucceed', 'onFail', 'onCancel'];

/** What a life-cycle hook gets. */
export interface HookContext {
  hook: HookName;
  run: {
    id: string;
    appId: string;
    scope: string;
    pipeline: string;
    version: string;
    params: Record<string, unknown>;
    spec: Record<string, unknown>;
    status: string;
    error: string | null;
    /** False for a run cancelled while it was still queued (its onStart never ran). */
    started: boolean;
  };
  /** 1 for the first try; a hook is retried with backoff when it throws. */
  attempt: number;
  /**
   * The transaction that also marks this hook done: what the hook writes through it commits
   * exactly once, together with that mark (a worker killed mid-hook leaves nothing behind, and the
   * hook runs again elsewhere). Effects outside the database may happen more than once: make them
   * idempotent.
   */
  tx: Pick<PoolClient, 'query'>;
  /** Aborted when the hook times out (NORN_HOOK_TIMEOUT_MS) or the worker shuts down. */
  signal: AbortSignal;
  log(line: string): void;
}

/** A pipeline's hooks (methods, so a pipeline of specific services fits the registry's). */
export interface PipelineHooks<S = unknown> {
  onStart?(ctx: HookContext, services: S): Promise<void>;
  onSucceed?(ctx: HookContext, services: S): Promise<void>;
  onFail?(ctx: HookContext, services: S): Promise<void>;
  onCancel?(ctx: HookContext, services: S): Promise<void>;
}

export interface StepDefinition<S = unknown> {
  name: string;
  /** Returns the step's output (JSON), saved in PostgreSQL and readable by later steps. */
  run(ctx: StepContext, services: S): Promise<unknown>;
  /** BullMQ attempts for this step (default 1). Every step must be idempotent anyway. */
  attempts?: number;
  backoffMs?: number;
}

export interface PipelineDefinition<S = unknown> {
  name: string;
  /** Recorded on every run; a run only ever executes the definition version it started with. */
  version: string;
  /** Event type prefix (deploy → deploy.queued, deploy.step …); defaults to the name. */
  events?: string;
  /** BullMQ queue of its steps (default "steps"). */
  queue?: string;
  /**
   * The scope of a run, the key of its lease (one run per scope at a time, across the fleet),
   * from the request: `app:<id>` (the default) for what changes an app (deploy, restore, forge,
   * teardown), `drift:<app>` for a drift check, `stack:<id>`, `review:<stack>#<mr>`.
   */
  scope?(request: { appId: string; params: Record<string, unknown> }): string;
  /**
   * What a request does when its scope is busy (default queue). A request may override it; a
   * deploy's comes from the app's deployPolicy.concurrency.
   */
  policy?: ConcurrencyPolicy;
  steps: ReadonlyArray<StepDefinition<S>>;
  /**
   * A step (one of `steps`) that also runs after the run failed or was cancelled, e.g. deploy's
   * cleanup. It must cope with earlier steps not having run.
   */
  finalizer?: string;
  /**
   * Life-cycle hooks, each run exactly once per run by a worker (src/workers/hooks.ts): onStart
   * when the run is admitted, onSucceed / onFail / onCancel when it ends (an end hook waits for
   * onStart). A hook that throws is retried, then reported as `<prefix>.hook_failed`.
   */
  hooks?: PipelineHooks<S>;
  /** Extra payload for `<prefix>.completed`, from all step outputs (e.g. deploy's imageTag). */
  summarize?(outputs: Record<string, unknown>): Record<string, unknown>;
}

export const DEFAULT_QUEUE = 'steps';

/** `<kind>:<key>`; the key may hold `/` and `#` (review:infra/net#12). Checked by the schema too. */
export const SCOPE = /^(app|stack|review|drift):[A-Za-z0-9][A-Za-z0-9._/#-]{0,199}$/;

/** The scope a request for `def` runs in: the definition's, or `app:<appId>`. */
export function scopeOf(
  def: Pick<PipelineDefinition<never>, 'name' | 'scope'>,
  request: { appId: string; params: Record<string, unknown> },
): string {
  const scope = def.scope ? def.scope(request) : `app:${request.appId}`;
  if (!SCOPE.test(scope))
    throw new NornError(
      'PIPELINE_UNKNOWN',
      `pipeline ${def.name} derived scope "${scope}", which is not <app|stack|review|drift>:<key>`,
    );
  return scope;
}

/** Return this from a step to report it `skipped` (e.g. "no build.test configured"). */
export class StepSkipped {
  constructor(readonly reason: string) {}
}
export const skipStep = (reason: string) => new StepSkipped(reason);
const NAME = /^[a-z][a-z0-9-]{0,40}$/;

export function validatePipeline(def: PipelineDefinition<never>): void {
  const problems: string[] = [];
  if (!NAME.test(def.name)) problems.push(`name "${def.name}" must match ${NAME}`);
  if (!/^[A-Za-z0-9._-]{1,40}$/.test(def.version))
    problems.push(`version "${def.version}" must be 1-40 of [A-Za-z0-9._-]`);
  if (def.steps.length === 0) problems.push('needs at least one step');
  const seen = new Set<string>();
  for (const s of def.steps) {
    if (!NAME.test(s.name)) problems.push(`step "${s.name}" must match ${NAME}`);
    if (seen.has(s.name)) problems.push(`step "${s.name}" appears twice`);
    seen.add(s.name);
  }
  if (def.finalizer !== undefined && !seen.has(def.finalizer))
    problems.push(`finalizer "${def.finalizer}" is not one of its steps`);
  if (def.queue !== undefined && !/^[A-Za-z0-9_-]+$/.test(def.queue))
    problems.push(`queue "${def.queue}" may not contain ":"`);
  for (const name of Object.keys(def.hooks ?? {}))
    if (!HOOK_NAMES.includes(name as HookName))
      problems.push(`hook "${name}" is not one of ${HOOK_NAMES.join(', ')}`);
  if (
    def.policy !== undefined &&
    !['queue', 'supersede', 'reject', 'coalesce'].includes(def.policy)
  )
    problems.push(
      `policy "${String(def.policy)}" is not one of queue, supersede, reject, coalesce`,
    );
  if (def.queue === 'norn')
    problems.push('queue "norn" is reserved (runs\' live state lives under <prefix>:norn:)');
  if (problems.length)
    throw new NornError(
      'PIPELINE_UNKNOWN',
      `pipeline ${def.name}@${def.version}: ${problems.join('; ')}`,
    );
}

/** Every pipeline definition a process knows, by name and version. */
export class PipelineRegistry<S = unknown> {
  private readonly byKey = new Map<string, PipelineDefinition<S>>();
  private readonly latestByName = new Map<string, PipelineDefinition<S>>();

  constructor(defs: ReadonlyArray<PipelineDefinition<S>> = []) {
    for (const d of defs) this.register(d);
  }

  /** Registers a definition; the last one registered under a name is what new runs use. */
  register(def: PipelineDefinition<S>): this {
    validatePipeline(def as PipelineDefinition<never>);
    this.byKey.set(`${def.name}@${def.version}`, def);
    this.latestByName.set(def.name, def);
    return this;
  }

  latest(name: string): PipelineDefinition<S> {
    const def = this.latestByName.get(name);
    if (!def) throw new NornError('PIPELINE_UNKNOWN', `no pipeline named "${name}" is registered`);
    return def;
  }

  get(name: string, version: string): PipelineDefinition<S> {
    const def = this.byKey.get(`${name}@${version}`);
    if (!def) {
      throw new NornError(
        'PIPELINE_UNKNOWN',
        `this worker does not have pipeline ${name}@${version} (it has ${[...this.byKey.keys()].join(', ') || 'none'}); runs execute the version they started with`,
      );
    }
    return def;
  }

  queues(): string[] {
    return [...new Set([...this.byKey.values()].map((d) => d.queue ?? DEFAULT_QUEUE))];
  }
}
