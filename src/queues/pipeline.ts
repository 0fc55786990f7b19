/**
 * A pipeline is data: a name, a version, and ordered steps with their handlers. The engine runs
 * every pipeline the same way (src/queues/flow.ts, src/workers/processor.ts); deploy, forge,
 * teardown and the test pipelines differ only in their definitions.
 */
import type { z } from 'zod';
import type { RunCommandOptions, RunCommandResult } from '../shared/exec.js';
import { NornError } from '../shared/errors.js';
import type { PoolClient } from 'pg';
import type { ConcurrencyPolicy } from '../shared/store/runs.js';

/** How far a step that waits on something is: `ready` of `desired`. */
export interface StepProgress {
  ready: number;
  desired: number;
  /** Where the engine rolls out per group (nomad task groups): the group and its counts. */
  group?: string;
  placed?: number;
  healthy?: number;
  unhealthy?: number;
}

/**
 * What a step sees of its run. `O` maps the names of the steps before it to their outputs (as their
 * schemas parse them) and `P` is its params as its params schema parses them; a step written
 * without defineStep sees both untyped.
 */
export interface StepContext<
  O extends object = Record<string, unknown>,
  P = Record<string, unknown>,
> {
  run: {
    id: string;
    appId: string;
    sagaId: string;
    pipeline: string;
    version: string;
    /** The run's params as requested (unchecked); `ctx.params` is what the step's schema made of them. */
    params: Record<string, unknown>;
    /** The app spec pinned when the run was requested. */
    spec: Record<string, unknown>;
  };
  /** The run's params, checked by the step's `params` schema when the step started. */
  params: P;
  step: { name: string; index: number; total: number; attempt: number };
  /** Aborted on cancel, on worker shutdown, and when the run lost its scope lease. Pass it on. */
  signal: AbortSignal;
  /** A line for the step's log (Bull Board's Logs tab and the worker log). */
  log(line: string): void;
  /**
   * Appends `<prefix>.progress {step, sagaId, ready, desired}` to the run's events (a rollout's
   * ready replicas, say), in order after the step's start; one that repeats the last is dropped.
   * Informational: never fails the step.
   */
  progress(p: StepProgress): void;
  /**
   * Output of an earlier step of this run (or of the run it resumes): null when that step was
   * skipped, undefined when it has not finished (or is not in this run's pipeline).
   */
  output<K extends keyof O & string>(step: K): Promise<O[K] | null | undefined>;
  outputs(): Promise<{ [K in keyof O]?: O[K] | null }>;
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
  /**
   * Appends an event of the run's subject (e.g. `drift.detected`) in the hook's transaction: it
   * is in the saga log exactly when the hook's writes are, and published once they commit.
   */
  emit(type: string, payload: Record<string, unknown>): Promise<void>;
}

/** A pipeline's hooks (methods, so a pipeline of specific services fits the registry's). */
export interface PipelineHooks<S = unknown> {
  onStart?(ctx: HookContext, services: S): Promise<void>;
  onSucceed?(ctx: HookContext, services: S): Promise<void>;
  onFail?(ctx: HookContext, services: S): Promise<void>;
  onCancel?(ctx: HookContext, services: S): Promise<void>;
}

/** A step as the engine runs it (defineStep writes typed ones). */
export interface StepDefinition<S = unknown> {
  name: string;
  /**
   * The schema of the step's output: the processor checks what `run` returns against it before
   * recording it (a mismatch fails the step for good: a bug, not a hiccup), and records what it
   * parsed. Without one, any JSON is recorded.
   */
  output?: z.ZodType;
  /** The schema of the run params the step reads, checked when it starts (BAD_REQUEST if refused). */
  params?: z.ZodType<Record<string, unknown>>;
  /**
   * The earlier steps' outputs it reads, with the schemas it expects them to have. Registering a
   * pipeline refuses one where such a step runs later or declares another output schema.
   */
  reads?: OutputSchemas;
  /** Returns the step's output (JSON), saved in PostgreSQL and readable by later steps. */
  run(ctx: StepContext, services: S): Promise<unknown>;
  /** BullMQ attempts for this step (default 1). Every step must be idempotent anyway. */
  attempts?: number;
  backoffMs?: number;
}

/** Step name → output schema: what a pipeline's steps return. */
export type OutputSchemas = Record<string, z.ZodType>;
/** Step name → output, as later steps read it (each schema's parsed type). */
export type OutputsOf<Schemas extends OutputSchemas> = {
  [K in keyof Schemas]: z.output<Schemas[K]>;
};

/** The names in `Order` before `N` (the steps whose outputs `N` may read). */
export type StepsBefore<
  Order extends readonly string[],
  N extends string,
> = Order extends readonly [infer H extends string, ...infer T extends readonly string[]]
  ? H extends N
    ? never
    : H | StepsBefore<T, N>
  : never;

/** A params schema: it reads an object (the run's params). A step without one sees them unchecked. */
type AnyParams = z.ZodType<Record<string, unknown>>;

/** What a step is written as: its name, schemas, retry options and handler. */
export interface StepSpec<
  S,
  N extends string,
  O extends z.ZodType,
  P extends AnyParams,
  R extends OutputSchemas,
> {
  name: N;
  output: O;
  params?: P;
  /** The earlier steps' outputs it reads: step name → that step's output schema. */
  reads?: R;
  attempts?: number;
  backoffMs?: number;
  /** Returns what `output` accepts (or skipStep(...)). */
  run(ctx: StepContext<OutputsOf<R>, z.output<P>>, services: S): Promise<z.input<O> | StepSkipped>;
}

/** A step written with defineStep: its name and output schema stay known to definePipeline. */
export interface TypedStep<
  S,
  N extends string = string,
  O extends z.ZodType = z.ZodType,
> extends StepDefinition<S> {
  name: N;
  output: O;
}

/**
 * Writes a step whose context reads the outputs of the earlier steps named in `reads`, typed from
 * their schemas: `defineStep<Services>()({ name: 'build', reads: { clone: CloneOutput }, output,
 * run })`. The types hold at run time: the processor records only outputs their steps' schemas
 * accepted, a pipeline is refused unless the steps a step reads come before it with the same
 * schemas (validatePipeline), and `ctx.params` is what `params` parsed.
 */
export function defineStep<S>() {
  return <
    const N extends string,
    O extends z.ZodType,
    P extends AnyParams = AnyParams,
    R extends OutputSchemas = Record<never, never>,
  >(
    spec: StepSpec<S, N, O, P, R>,
  ): TypedStep<S, N, O> => ({
    ...spec,
    // The one place a context's types are asserted rather than checked, for the reasons above.
    run: (ctx, services) =>
      spec.run(ctx as unknown as StepContext<OutputsOf<R>, z.output<P>>, services),
  });
}

/**
 * Steps of one pipeline whose outputs are declared together, in order: a step's context reads the
 * outputs of the steps before it in `order`, typed from their schemas, and its output schema is
 * the one `outputs` names for it. See src/pipelines/deploy/types.ts.
 */
export function stepsOf<S>() {
  return <
    const Order extends readonly string[],
    Schemas extends { [K in Order[number]]: z.ZodType },
  >(
    order: Order,
    outputs: Schemas,
  ) => {
    type Before<N extends Order[number]> = Pick<Schemas, StepsBefore<Order, N>>;
    return <const N extends Order[number], P extends AnyParams = AnyParams>(
      name: N,
      spec: Omit<StepSpec<S, N, Schemas[N], P, Before<N>>, 'name' | 'output' | 'reads'>,
    ): TypedStep<S, N, Schemas[N]> => {
      // The names before `name` in `order`, with their schemas: what StepsBefore computes.
      const before = order.slice(0, order.indexOf(name)) as ReadonlyArray<Order[number]>;
      const reads = Object.fromEntries(before.map((n) => [n, outputs[n]])) as unknown as Before<N>;
      return defineStep<S>()({ ...spec, name, output: outputs[name], reads });
    };
  };
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

/** Step name → output of a tuple of typed steps. */
export type StepOutputs<Steps extends ReadonlyArray<TypedStep<never>>> = {
  [T in Steps[number] as T['name']]: z.output<T['output']>;
};

/**
 * A pipeline of typed steps: `finalizer` must name one of them and `summarize` reads their outputs
 * typed (a step that did not finish is absent, a skipped one null).
 */
export function definePipeline<S>() {
  return <const Steps extends ReadonlyArray<TypedStep<S>>>(
    def: Omit<PipelineDefinition<S>, 'steps' | 'finalizer' | 'summarize'> & {
      steps: Steps;
      finalizer?: Steps[number]['name'];
      summarize?(outputs: {
        [K in keyof StepOutputs<Steps>]?: StepOutputs<Steps>[K] | null;
      }): Record<string, unknown>;
    },
  ): PipelineDefinition<S> => def;
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
  def.steps.forEach((s, i) => {
    for (const [name, schema] of Object.entries(s.reads ?? {})) {
      const j = def.steps.findIndex((t) => t.name === name);
      if (j < 0) continue; // not in this pipeline: the step reads it as undefined
      if (j > i) problems.push(`step "${s.name}" reads "${name}", which runs after it`);
      else if (def.steps[j]!.output && def.steps[j]!.output !== schema)
        problems.push(
          `step "${s.name}" reads "${name}" with another output schema than "${name}" declares`,
        );
    }
  });
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

  has(name: string): boolean {
    return this.latestByName.has(name);
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
