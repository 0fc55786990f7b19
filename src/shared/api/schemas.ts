/**
 * The records the api answers with, as zod schemas (each also a component of the OpenAPI document,
 * /api/openapi.json) and the TypeScript types inferred from them, which the CLI and the dashboard
 * read responses with. They describe what the stores return today: timestamps leave PostgreSQL as
 * Dates and reach the client as ISO 8601 strings; bigint columns are parsed as numbers
 * (src/shared/db.ts). Objects are strict where norn decides the shape and open only where the
 * shape is the user's (an infraspec, a stack spec, a payload).
 */
import { z } from '@hono/zod-openapi';

/** An RFC 3339 date-time (JSON-serialised timestamptz, or a timestamp inside a jsonb object). */
export const Timestamp = z
  .string()
  .openapi({ format: 'date-time', example: '2026-01-02T03:04:05.678Z' });

const Uuid = z.string().openapi({ format: 'uuid' });
/** A JSON object whose keys are the user's or a pipeline's (params, summaries, payloads). */
const OpenObject = z.record(z.string(), z.unknown());

// ---- errors ----------------------------------------------------------------------------------

/** The codes an error answer can carry (src/api/http-errors.ts maps them to statuses). */
export const ERROR_CODES = [
  'SPEC_INVALID',
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'PAYLOAD_TOO_LARGE',
  'PIPELINE_UNKNOWN',
  'UNAVAILABLE',
  'INTERNAL',
] as const;

/** One problem of a refused spec or request: where (`processes.web.port`, `query.limit`), what. */
export const Problem = z.object({ path: z.string(), message: z.string() }).openapi('Problem');
export type Problem = z.infer<typeof Problem>;

/**
 * `{error: {code, message, ...details}}`. Details depend on the error (a 409 names what is in the
 * way, a SPEC_INVALID lists its problems, a 503 says when to retry), so the object is open.
 */
export const ErrorBody = z
  .object({
    error: z
      .object({
        code: z.enum(ERROR_CODES),
        message: z.string(),
        problems: z.array(Problem).optional(),
        retryAfterSeconds: z.number().int().optional(),
      })
      .catchall(z.unknown()),
  })
  .strict()
  .openapi('Error');
export type ErrorBody = z.infer<typeof ErrorBody>;

// ---- apps ------------------------------------------------------------------------------------

/**
 * An infraspec as stored (docs/infraspec.md), env values replaced by "[hidden]": its shape is the
 * user's, checked when it is registered, so only `name` is promised here.
 */
export const InfraspecView = z
  .object({ name: z.string() })
  .catchall(z.unknown())
  .openapi('Infraspec', {
    description: 'An infraspec (docs/infraspec.md); env values read back as "[hidden]".',
  });

export const SourceFormat = z.enum(['yaml', 'json']);

export const App = z
  .object({
    id: z.string(),
    spec: InfraspecView,
    sourceFormat: SourceFormat,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .strict()
  .openapi('App');
export type App = z.infer<typeof App>;

export const RunStatus = z
  .enum(['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'])
  .openapi('RunStatus');
export type RunStatus = z.infer<typeof RunStatus>;

/** The run holding a scope's lease. */
export const ScopeHolder = z
  .object({
    runId: Uuid,
    deploymentId: Uuid.openapi({ description: 'The run id under its earlier name.' }),
    holder: z.string().openapi({ description: 'The worker process holding the lease.' }),
    acquiredAt: Timestamp,
    heartbeatAt: Timestamp,
    expiresAt: Timestamp,
    status: RunStatus,
    pipeline: z.string(),
  })
  .strict()
  .openapi('ScopeHolder');
export type ScopeHolder = z.infer<typeof ScopeHolder>;

/** Who holds a scope (`app:<id>`, `stack:<id>`, `drift:<app>` …) and what waits there, in order. */
export const ScopeView = z
  .object({
    scope: z.string(),
    holder: ScopeHolder.nullable(),
    waiting: z.array(
      z
        .object({
          runId: Uuid,
          deploymentId: Uuid,
          sagaId: Uuid,
          pipeline: z.string(),
          params: OpenObject,
          requestedAt: Timestamp,
        })
        .strict(),
    ),
  })
  .strict()
  .openapi('ScopeView');
export type ScopeView = z.infer<typeof ScopeView>;

export const ForgeState = z
  .object({
    state: z.enum(['unforged', 'forging', 'forged', 'forge_failed', 'tearing_down']),
    runId: Uuid.nullable(),
    resources: z
      .object({
        namespace: z.string().optional(),
        deployments: z.array(z.string()).optional(),
        cronJobs: z.array(z.string()).optional(),
        service: z.string().nullable().optional(),
        rule: z.object({ hostname: z.string(), service: z.string() }).nullable().optional(),
        dnsRoute: z.string().nullable().optional(),
      })
      .strict(),
  })
  .strict()
  .openapi('ForgeState');
export type ForgeState = z.infer<typeof ForgeState>;

/** An app at a glance, as GET /api/apps lists it for every app in one answer. */
export const AppStatus = z
  .object({
    forge: ForgeState.shape.state,
    latestRun: z
      .object({ runId: Uuid, pipeline: z.string(), status: RunStatus, createdAt: Timestamp })
      .strict()
      .nullable(),
    holder: ScopeHolder.pick({ runId: true, pipeline: true, holder: true, acquiredAt: true })
      .nullable()
      .openapi({ description: "The run holding the app's own scope (`app:<id>`)." }),
    queued: z
      .number()
      .int()
      .openapi({ description: "Runs queued for the app's own scope, behind the holder." }),
  })
  .strict()
  .openapi('AppStatus');
export type AppStatus = z.infer<typeof AppStatus>;

export const AppSummary = z
  .object({
    id: z.string(),
    target: z.string().nullable(),
    repo: z.object({ url: z.string(), branch: z.string().nullable() }).strict().nullable(),
    processes: z.array(z.string()),
    sourceFormat: SourceFormat,
    createdAt: Timestamp,
    updatedAt: Timestamp,
    status: AppStatus,
  })
  .strict()
  .openapi('AppSummary');
export type AppSummary = z.infer<typeof AppSummary>;

/** GET /api/apps/{id}. */
export const AppDetail = z
  .object({ app: App, lease: ScopeView, scopes: z.array(ScopeView), forge: ForgeState })
  .strict()
  .openapi('AppDetail');
export type AppDetail = z.infer<typeof AppDetail>;

/** POST /api/apps (201 created, 200 replaced). */
export const AppSaved = z.object({ app: App }).strict().openapi('AppSaved');
export type AppSaved = z.infer<typeof AppSaved>;

export const AppList = z
  .object({ apps: z.array(AppSummary) })
  .strict()
  .openapi('AppList');
export type AppList = z.infer<typeof AppList>;

export const AppDeleted = z
  .object({ app: z.object({ id: z.string(), deletedAt: Timestamp }).strict() })
  .strict()
  .openapi('AppDeleted');
export type AppDeleted = z.infer<typeof AppDeleted>;

// ---- runs ------------------------------------------------------------------------------------

export const Run = z
  .object({
    id: Uuid,
    appId: z.string(),
    sagaId: Uuid,
    scope: z.string(),
    pipeline: z.string(),
    pipelineVersion: z.string(),
    status: RunStatus,
    policy: z.enum(['queue', 'supersede', 'reject', 'coalesce']),
    params: OpenObject,
    steps: z.array(z.string()),
    eventPrefix: z.string(),
    queue: z.string(),
    resumedFrom: Uuid.nullable(),
    requestedBy: z.string().nullable(),
    hooks: z.array(z.string()),
    error: z.string().nullable(),
    errorCode: z.string().nullable(),
    failedStep: z.string().nullable(),
    cancelReason: z.string().nullable(),
    createdAt: Timestamp,
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
  })
  .strict()
  .openapi('Run');
export type Run = z.infer<typeof Run>;

export const Step = z
  .object({
    index: z.number().int(),
    name: z.string(),
    status: z.enum(['pending', 'running', 'complete', 'failed', 'skipped', 'cancelled', 'not_run']),
    attempts: z.number().int(),
    error: z.string().nullable(),
    errorCode: z.string().nullable(),
    worker: z.string().nullable(),
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
    durationMs: z.number().int().nullable(),
  })
  .strict()
  .openapi('Step');
export type Step = z.infer<typeof Step>;

export const Hook = z
  .object({
    hook: z.string(),
    status: z.enum(['pending', 'done', 'failed']),
    attempts: z.number().int(),
    error: z.string().nullable(),
    dueAt: Timestamp,
    finishedAt: Timestamp.nullable(),
  })
  .strict()
  .openapi('Hook');
export type Hook = z.infer<typeof Hook>;

/** A saga event (src/shared/events.ts, DESIGN.md "Events"). */
export const Event = z
  .object({
    id: z.number().int(),
    seq: z.number().int(),
    type: z.string(),
    appId: z.string(),
    runId: Uuid,
    sagaId: Uuid,
    ts: Timestamp,
    payload: OpenObject,
  })
  .strict()
  .openapi('Event');
export type Event = z.infer<typeof Event>;

export const RunList = z
  .object({ runs: z.array(Run) })
  .strict()
  .openapi('RunList');
export type RunList = z.infer<typeof RunList>;
export const DeploymentList = z
  .object({ deployments: z.array(Run) })
  .strict()
  .openapi('DeploymentList');
export type DeploymentList = z.infer<typeof DeploymentList>;

const runAcceptedFields = {
  runId: Uuid,
  deploymentId: Uuid.openapi({ description: 'The run id under its earlier name.' }),
  sagaId: Uuid,
  status: z.enum(['running', 'queued']),
  scope: z.string(),
  position: z.number().int().openapi({ description: 'Runs ahead of this one in its scope.' }),
  coalesced: z.boolean().optional().openapi({
    description: "True: the scope already had this pipeline's run waiting; this is it.",
  }),
};

/** How a run request was answered (202). */
export const RunAccepted = z.object(runAcceptedFields).strict().openapi('RunAccepted');
export type RunAccepted = z.infer<typeof RunAccepted>;

/** A resume: a new run, skipping the steps the old one completed. */
export const RunResumed = z
  .object({ ...runAcceptedFields, resumedFrom: Uuid })
  .strict()
  .openapi('RunResumed');
export type RunResumed = z.infer<typeof RunResumed>;

/** A forge request: the forge run, the teardown queued before it (force), or a resume. */
export const ForgeAccepted = z
  .object({ ...runAcceptedFields, teardown: RunAccepted.optional(), resumedFrom: Uuid.optional() })
  .strict()
  .openapi('ForgeAccepted');
export type ForgeAccepted = z.infer<typeof ForgeAccepted>;

export const RunDetail = z
  .object({ run: Run, steps: z.array(Step), hooks: z.array(Hook) })
  .strict()
  .openapi('RunDetail');
export type RunDetail = z.infer<typeof RunDetail>;
export const DeploymentDetail = z
  .object({ deployment: Run, steps: z.array(Step), hooks: z.array(Hook) })
  .strict()
  .openapi('DeploymentDetail');
export type DeploymentDetail = z.infer<typeof DeploymentDetail>;

export const RunEvents = z
  .object({ runId: Uuid, sagaId: Uuid, events: z.array(Event) })
  .strict()
  .openapi('RunEvents');
export type RunEvents = z.infer<typeof RunEvents>;
export const DeploymentEvents = z
  .object({ deploymentId: Uuid, sagaId: Uuid, events: z.array(Event) })
  .strict()
  .openapi('DeploymentEvents');
export type DeploymentEvents = z.infer<typeof DeploymentEvents>;
export const SagaEvents = z
  .object({ sagaId: Uuid, runId: Uuid, deploymentId: Uuid, events: z.array(Event) })
  .strict()
  .openapi('SagaEvents');
export type SagaEvents = z.infer<typeof SagaEvents>;

export const StepLogLines = {
  step: z.string(),
  lines: z.array(z.string()),
  count: z.number().int(),
};
export const RunStepLog = z
  .object({ runId: Uuid, sagaId: Uuid, ...StepLogLines })
  .strict()
  .openapi('RunStepLog');
export type RunStepLog = z.infer<typeof RunStepLog>;
export const DeploymentStepLog = z
  .object({ deploymentId: Uuid, sagaId: Uuid, ...StepLogLines })
  .strict()
  .openapi('DeploymentStepLog');
export type DeploymentStepLog = z.infer<typeof DeploymentStepLog>;

/** A cancel: a queued run ends at once ('cancelled'), a running one is 'cancelling'. */
const CancelStatus = z
  .string()
  .openapi({ description: 'cancelled, cancelling, or the status the run had already ended with' });
export const RunCancelled = z
  .object({ runId: Uuid, sagaId: Uuid, status: CancelStatus })
  .strict()
  .openapi('RunCancelled');
export type RunCancelled = z.infer<typeof RunCancelled>;
export const DeploymentCancelled = z
  .object({ deploymentId: Uuid, sagaId: Uuid, status: CancelStatus })
  .strict()
  .openapi('DeploymentCancelled');
export type DeploymentCancelled = z.infer<typeof DeploymentCancelled>;

/** GET /api/apps/{id}/events: newest first; `next` pages on (null on the last page). */
export const EventPage = z
  .object({
    events: z.array(Event),
    next: z.object({ before: z.number().int() }).strict().nullable(),
  })
  .strict()
  .openapi('EventPage');
export type EventPage = z.infer<typeof EventPage>;

// ---- drift -----------------------------------------------------------------------------------

export const DriftState = z
  .object({
    subject: z.string(),
    status: z.enum(['clean', 'drifted', 'error', 'unknown']),
    fingerprint: z.string().nullable(),
    summary: OpenObject,
    checkedAt: Timestamp,
    reportedAt: Timestamp.nullable(),
    lastError: z.string().nullable(),
    errorAt: Timestamp.nullable(),
  })
  .strict()
  .openapi('DriftState');
export type DriftState = z.infer<typeof DriftState>;

/** A subject never checked. */
export const DriftUnchecked = z
  .object({ subject: z.string(), status: z.literal('unknown') })
  .strict()
  .openapi('DriftUnchecked');

export const DriftView = z
  .object({ drift: z.union([DriftState, DriftUnchecked]) })
  .strict()
  .openapi('DriftView');
export type DriftView = z.infer<typeof DriftView>;

// ---- snapshots -------------------------------------------------------------------------------

export const Snapshot = z
  .object({
    appId: z.string(),
    database: z.string(),
    ts: z.string().openapi({ example: '20261123T004501123Z' }),
    takenAt: Timestamp,
    sizeBytes: z.number().int(),
    location: z.string(),
    sha256: z.string(),
    deploymentId: Uuid.nullable(),
  })
  .strict()
  .openapi('Snapshot');
export type Snapshot = z.infer<typeof Snapshot>;

export const SnapshotList = z
  .object({ snapshots: z.array(Snapshot) })
  .strict()
  .openapi('SnapshotList');
export type SnapshotList = z.infer<typeof SnapshotList>;

// ---- releases --------------------------------------------------------------------------------

/** A release: what one deploy put on the target (its spec and secrets are not answered). */
export const Release = z
  .object({
    id: z.number().int(),
    runId: Uuid,
    target: z.string(),
    imageRef: z.string(),
    commitSha: z.string(),
    digest: z.string().nullable(),
    migrationsApplied: z.array(z.string()),
    snapshotTs: z.string().nullable(),
    status: z.enum(['deploying', 'active', 'superseded', 'failed', 'rolled_back']),
    error: z.string().nullable(),
    createdAt: Timestamp,
    activatedAt: Timestamp.nullable(),
    endedAt: Timestamp.nullable(),
  })
  .strict()
  .openapi('Release');
export type Release = z.infer<typeof Release>;

export const ReleaseList = z
  .object({ releases: z.array(Release) })
  .strict()
  .openapi('ReleaseList');
export type ReleaseList = z.infer<typeof ReleaseList>;

// ---- stacks and plans ------------------------------------------------------------------------

/** A stack spec as stored (docs/stacks.md), without its webhook secret. */
export const StackSpecView = z
  .object({ name: z.string() })
  .catchall(z.unknown())
  .openapi('StackSpec', {
    description: 'A stack spec (docs/stacks.md), without its webhook secret.',
  });

export const Stack = z
  .object({
    id: z.string(),
    spec: StackSpecView,
    hasWebhookSecret: z.boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .strict()
  .openapi('Stack');
export type Stack = z.infer<typeof Stack>;

export const StackView = z.object({ stack: Stack }).strict().openapi('StackView');
export type StackView = z.infer<typeof StackView>;
/** POST /api/stacks; `warnings` when the stack was stored but its drift schedule is not set yet. */
export const StackSaved = z
  .object({ stack: Stack, warnings: z.array(z.string()).optional() })
  .strict()
  .openapi('StackSaved');
export type StackSaved = z.infer<typeof StackSaved>;
export const StackList = z
  .object({ stacks: z.array(Stack) })
  .strict()
  .openapi('StackList');
export type StackList = z.infer<typeof StackList>;
export const StackDeleted = z.object({ deleted: z.string() }).strict().openapi('StackDeleted');
export type StackDeleted = z.infer<typeof StackDeleted>;

export const PlanKind = z.enum(['review', 'release', 'drift']).openapi('PlanKind');
export type PlanKind = z.infer<typeof PlanKind>;

/** Where applying a release plan got to (null: never begun). */
export const PlanApply = z
  .object({
    runId: Uuid,
    startedAt: Timestamp,
    appliedAt: Timestamp.nullable(),
    error: z.string().nullable(),
  })
  .strict()
  .openapi('PlanApply');

const planFields = {
  id: z.number().int(),
  stackId: z.string(),
  runId: Uuid.nullable(),
  kind: PlanKind,
  sha256: z.string().nullable(),
  summary: OpenObject,
  pullRequest: z.number().int().nullable(),
  hasPlanFile: z.boolean(),
  createdAt: Timestamp,
  apply: PlanApply.nullable(),
};

/** A plan in a stack's listing. */
export const PlanSummary = z
  .object({ ...planFields, baseSha: z.string().nullable(), headSha: z.string().nullable() })
  .strict()
  .openapi('PlanSummary');
export type PlanSummary = z.infer<typeof PlanSummary>;

/** One plan (GET /api/plans/{id}): its commits together and `tofu show -json` of it. */
export const Plan = z
  .object({
    ...planFields,
    commits: z.object({ base: z.string().nullable(), head: z.string().nullable() }).strict(),
    showJson: z.unknown().openapi({ description: '`tofu show -json` of the plan (null if none).' }),
  })
  .strict()
  .openapi('Plan');
export type Plan = z.infer<typeof Plan>;

export const PlanList = z
  .object({ plans: z.array(PlanSummary) })
  .strict()
  .openapi('PlanList');
export type PlanList = z.infer<typeof PlanList>;
export const PlanView = z.object({ plan: Plan }).strict().openapi('PlanView');
export type PlanView = z.infer<typeof PlanView>;

// ---- alerts and webhooks ---------------------------------------------------------------------

export const AlertDelivery = z
  .object({
    id: z.number().int(),
    kind: z.string(),
    subject: z.string(),
    urlHost: z.string(),
    status: z.enum(['ok', 'failed']),
    attempts: z.number().int(),
    httpStatus: z.number().int().nullable(),
    error: z.string().nullable(),
    payload: OpenObject.openapi({ description: 'The alert as sent (docs/alerts.md).' }),
    createdAt: Timestamp,
    finishedAt: Timestamp,
  })
  .strict()
  .openapi('AlertDelivery');
export type AlertDelivery = z.infer<typeof AlertDelivery>;

export const AlertDeliveryList = z
  .object({ deliveries: z.array(AlertDelivery) })
  .strict()
  .openapi('AlertDeliveryList');
export type AlertDeliveryList = z.infer<typeof AlertDeliveryList>;

export const WebhookRefusal = z
  .object({ provider: z.string(), reason: z.string(), count: z.number().int(), lastAt: Timestamp })
  .strict()
  .openapi('WebhookRefusal');
export const WebhookRefusalList = z
  .object({ refusals: z.array(WebhookRefusal) })
  .strict()
  .openapi('WebhookRefusalList');
export type WebhookRefusalList = z.infer<typeof WebhookRefusalList>;

/** What a delivery did for one subscriber (app or stack): the run it started, or why none. */
export const RoutedEntry = z
  .object({
    kind: z.string(),
    id: z.string(),
    verified: z.boolean(),
    started: z.string().optional(),
    skipped: z.string().optional(),
  })
  .strict()
  .openapi('RoutedEntry');

const webhookDeliveryFields = {
  id: Uuid,
  provider: z.string(),
  event: z.string(),
  deliveryId: z.string(),
  receivedAt: Timestamp,
  repository: z.string().nullable(),
  outcome: z.enum(['received', 'started', 'ignored', 'failed']),
  reason: z.string().nullable(),
  routed: z.array(RoutedEntry),
};
export const WebhookDelivery = z.object(webhookDeliveryFields).strict().openapi('WebhookDelivery');
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const WebhookDeliveryList = z
  .object({ deliveries: z.array(WebhookDelivery) })
  .strict()
  .openapi('WebhookDeliveryList');
export type WebhookDeliveryList = z.infer<typeof WebhookDeliveryList>;

/** One delivery with the payload the forge sent. */
export const WebhookDeliveryDetail = z
  .object({ delivery: z.object({ ...webhookDeliveryFields, payload: z.unknown() }).strict() })
  .strict()
  .openapi('WebhookDeliveryDetail');
export type WebhookDeliveryDetail = z.infer<typeof WebhookDeliveryDetail>;

/** A replay: the delivery as it settled again. */
export const WebhookReplayed = z
  .object({ delivery: WebhookDelivery })
  .strict()
  .openapi('WebhookReplayed');
export type WebhookReplayed = z.infer<typeof WebhookReplayed>;

// ---- request bodies --------------------------------------------------------------------------

export const DeployBody = z
  .object({
    ref: z.string({ error: 'must be a string' }).nullable().optional().openapi({
      description:
        "A branch, tag or commit; absent: the app's repo.branch, else the remote's HEAD.",
    }),
  })
  .openapi('DeployRequest');
export type DeployBody = z.infer<typeof DeployBody>;

export const ForgeBody = z
  .object({
    force: z
      .boolean({ error: '"force" must be true or false' })
      .nullable()
      .optional()
      .openapi({ description: 'Tear a forged app down and forge it again.' }),
  })
  .openapi('ForgeRequest');
export type ForgeBody = z.infer<typeof ForgeBody>;

export const ReleaseBody = z
  .object({
    commitSha: z
      .string({ error: 'commitSha must be a commit SHA (7-64 hex digits)' })
      .regex(/^[0-9a-f]{7,64}$/, { error: 'commitSha must be a commit SHA (7-64 hex digits)' })
      .optional(),
  })
  .openapi('ReleaseRequest');
export type ReleaseBody = z.infer<typeof ReleaseBody>;
