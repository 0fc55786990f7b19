/** What the api's routes are built from (app.ts wires them; routes import only this). */
import type { Queue } from 'bullmq';
import type { Db } from '../shared/db.js';
import type { WsStats } from './metrics.js';
import type { Logger } from '../shared/logger.js';
import type { Redis } from '../shared/redis.js';
import type { AppStore } from '../shared/store/apps.js';
import type { DriftStateStore } from '../shared/store/drift-state.js';
import type { EventStore } from '../shared/store/events.js';
import type { PlanArtifactStore } from '../shared/store/plan-artifacts.js';
import type { RunStore } from '../shared/store/runs.js';
import type { WebhookStore } from '../shared/store/webhooks.js';
import type { StackStore } from '../shared/store/stacks.js';
import type { RunService } from '../queues/runs.js';
import type { DriftScheduler } from '../gitops/drift-schedule.js';

/**
 * Names of the app's containers on the target's engine (found by the `norn.app` label), or
 * `undefined` when this process has no engine to ask.
 */
export type AppContainers = (appId: string) => Promise<string[] | undefined>;

export interface ApiDeps {
  apps: AppStore;
  stacks: StackStore;
  plans: PlanArtifactStore;
  drift: DriftStateStore;
  store: RunStore;
  events: EventStore;
  runs: RunService;
  db: Db;
  redis: Redis;
  log: Logger;
  apiToken: string | undefined;
  /** The pipeline `POST /api/apps/:id/deploy` runs. */
  deployPipeline: string;
  /** Largest request body, in bytes (NORN_MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** Absent: no target engine is configured here, so DELETE looks at runs and releases only. */
  appContainers?: AppContainers;
  /** Webhook deliveries and refusals. */
  webhooks: WebhookStore;
  /** NORN_WEBHOOK_SECRET: verifies deliveries for repositories whose subscribers have no secret. */
  webhookSecret: string | undefined;
  /** The stacks' drift-check schedulers (absent where no drift-check pipeline is registered). */
  driftSchedules?: DriftScheduler;
  /** NORN_METRICS_PUBLIC: GET /metrics answers without the token. */
  metricsPublic?: boolean;
  /** This process's /ws relay, for /metrics. */
  ws?: WsStats;
  /** NORN_SESSION_TTL_S: how long a dashboard session lasts. */
  sessionTtlS?: number;
  /** NORN_UI_DIR: the built dashboard, served at / (absent: no dashboard). */
  uiDir?: string;
  /** Queues shown on Bull Board (and measured by /metrics). */
  queues: Queue[];
}
