/**
 * norn's configuration: read from the environment once, validated with zod, every problem reported
 * together. Nothing else in norn reads `process.env` (main.ts passes it in), so tests build configs
 * from plain objects.
 */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { API_TOKEN_MIN_LENGTH } from './api-token.js';
import { parseGitCredentials, type GitCredential } from './drivers/git-credentials.js';
import { NornError } from './errors.js';

const int = (min: number) => z.coerce.number().int().min(min);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A comma-separated list of http(s) URLs; a problem names the entry's place, never its text. */
const urlList = z
  .string()
  .transform((text) =>
    text
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean),
  )
  .superRefine((urls, ctx) => {
    urls.forEach((u, i) => {
      const ok = URL.canParse(u) && ['http:', 'https:'].includes(new URL(u).protocol);
      if (!ok) ctx.addIssue({ code: 'custom', message: `entry ${i + 1} is not an http(s) URL` });
    });
  });

/** Every variable norn reads, with its default. The README table is generated from the same facts. */
export const EnvSchema = z.object({
  PORT: int(0).max(65535).default(8080).describe('HTTP port of the api.'),
  HOST: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('Address the api binds to. Anything but loopback requires NORN_API_TOKEN.'),
  REDIS_URL: z
    .string()
    .url()
    .default('redis://127.0.0.1:6379')
    .describe(
      'Redis for queues and pub/sub. Must run with maxmemory-policy noeviction (and AOF in production).',
    ),
  DATABASE_URL: z
    .string()
    .url()
    .default('postgres://postgres@127.0.0.1:5432/norn')
    .describe('PostgreSQL: the durable truth (apps, runs, event log).'),
  // A restart or failover of PostgreSQL must not fail the steps running through it.
  NORN_DB_RETRY_MS: int(0)
    .default(30_000)
    .describe(
      "How long a step's database calls, and the engine's around a step, are tried again after a transient PostgreSQL error (connection refused or dropped, server restarting, serialization conflict) before the step fails naming the cause.",
    ),
  NORN_API_TOKEN: z
    .string()
    .min(API_TOKEN_MIN_LENGTH, `must be at least ${API_TOKEN_MIN_LENGTH} characters`)
    .optional()
    .describe(
      'Bearer token for /api, /ws and /admin/queues. Unset is allowed only on a loopback HOST.',
    ),
  NORN_MAX_BODY_BYTES: int(1_024)
    .max(64 * 1_048_576)
    .default(1_048_576)
    .describe(
      'Largest request body the api accepts, in bytes; a larger one is answered 413 before it is read.',
    ),
  // Forges sign with one secret per webhook; a repository registered without its own uses this.
  NORN_METRICS_PUBLIC: bool
    .default(false)
    .describe(
      'true: GET /metrics answers without the api token (for a Prometheus on a trusted network); otherwise it needs it, as /api does.',
    ),
  NORN_WEBHOOK_SECRET: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'Fallback secret for /webhooks/github, /webhooks/gitlab and /webhooks/gitea: verifies deliveries of repositories whose apps set no repo.webhookSecret. Unset: such deliveries are refused (401). Never in logs, events or API answers.',
    ),
  NORN_WORKER_CONCURRENCY: int(1)
    .max(1000)
    .default(4)
    .describe('How many steps one worker process runs at once.'),
  NORN_WORKER_METRICS_PORT: int(1)
    .max(65_535)
    .optional()
    .describe(
      "A worker serves its own process metrics (CPU, memory, event loop, steps running) at GET /metrics on this port, on HOST; off when unset. The api's /metrics covers the fleet.",
    ),
  NORN_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
    .default('norn')
    .describe(
      'Prefix of every BullMQ key and pub/sub channel: separate installations may share one Redis.',
    ),
  NORN_SHUTDOWN_GRACE_MS: int(0)
    .default(25_000)
    .describe(
      'SIGTERM: how long running steps may take to finish before they are handed back to the queue.',
    ),
  NORN_LEASE_TTL_MS: int(1_000)
    .default(30_000)
    .describe(
      "A run's scope lease expires this long after its last heartbeat (then the sweeper checks the run).",
    ),
  NORN_LEASE_HEARTBEAT_MS: int(100)
    .default(5_000)
    .describe('How often a worker running a step renews its scope lease.'),
  NORN_SWEEP_INTERVAL_MS: int(100)
    .default(5_000)
    .describe(
      'How often each process sweeps for expired leases, stuck cancels and unadmitted runs.',
    ),
  NORN_HOOK_POLL_MS: int(10)
    .default(250)
    .describe("How often each worker looks for runs' life-cycle hooks that are due."),
  NORN_HOOK_ATTEMPTS: int(1)
    .default(5)
    .describe('How many times a life-cycle hook is tried before it is marked failed and reported.'),
  NORN_HOOK_BACKOFF_MS: int(0)
    .default(1_000)
    .describe('Wait before a failed hook is tried again; doubles each attempt, at most 60 s.'),
  NORN_HOOK_TIMEOUT_MS: int(100)
    .default(60_000)
    .describe('A hook that has not returned after this long is aborted and counts as failed.'),
  NORN_LOCK_DURATION_MS: int(1_000)
    .default(30_000)
    .describe(
      "BullMQ job lock: a killed worker's step is picked up again after about lock + stalled interval.",
    ),
  NORN_STALLED_INTERVAL_MS: int(500)
    .default(15_000)
    .describe('BullMQ stalled-job check interval (see NORN_LOCK_DURATION_MS).'),
  NORN_MAX_STALLED_COUNT: int(0)
    .default(2)
    .describe('How many times a step may stall (its worker died) before it fails.'),
  NORN_CANCEL_GRACE_MS: int(0)
    .default(5_000)
    .describe(
      'After a cancel, how long a step may take to stop before the run is ended without it.',
    ),
  NORN_RECORD_DELAY_MS: int(0)
    .max(1_000)
    .default(10)
    .describe(
      'How long a worker gathers step transitions before writing them to PostgreSQL in one transaction (their events are published after it). The end of a run never waits for it.',
    ),
  NORN_WS_HEARTBEAT_MS: int(100)
    .default(15_000)
    .describe(
      'WebSocket ping interval; a client that sends nothing, not even a pong, between two pings is dropped.',
    ),
  NORN_SESSION_TTL_S: int(60)
    .default(43_200)
    .describe(
      'How long a dashboard session lasts (seconds) after logging in with the api token; logout ends it sooner.',
    ),
  NORN_UI_DIR: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Where the built dashboard is (`npm run build:ui` writes it; script/bootstrap builds it). Unset: `dist/ui` of this checkout.',
    ),
  NORN_WS_MAX_BUFFERED_BYTES: int(64 * 1024)
    .default(4 * 1024 * 1024)
    .describe(
      'Bytes a WebSocket client may fall behind (queued on the api, beyond what the kernel holds) before it is dropped; it reconnects with lastEventId and catches up from PostgreSQL, and the others are never slowed.',
    ),
  NORN_MIGRATE_ON_START: bool
    .default(true)
    .describe(
      'Apply database migrations when a process starts (the `migrate` command always does).',
    ),
  NORN_PIPELINES_MODULE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'A module exporting extra pipeline definitions (`export const pipelines = [...]`) to register.',
    ),
  NORN_DEPLOY_PIPELINE: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/)
    .default('deploy')
    .describe(
      'The pipeline POST /api/apps/:id/deploy runs (a custom one may come from NORN_PIPELINES_MODULE).',
    ),
  NORN_WORK_DIR: z
    .string()
    .min(1)
    .default('.norn/work')
    .describe(
      'Where workers keep per-run clones and build contexts (removed by the cleanup step).',
    ),
  NORN_DOCKER_SOCKET: z
    .string()
    .min(1)
    .default('/var/run/docker.sock')
    .describe('Docker engine socket of the docker target.'),
  NORN_KUBE_CONTEXT: z
    .string()
    .min(1)
    .optional()
    .describe(
      'kubeconfig context the kubernetes target uses (default: its current-context). The config itself is found as kubectl finds it: `KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account.',
    ),
  NORN_NOMAD_ADDR: z
    .string()
    .url()
    .optional()
    .describe(
      'nomad target: the Nomad HTTP API, e.g. `http://127.0.0.1:4646` (https with NORN_NOMAD_CACERT). Read when a nomad app first needs it.',
    ),
  NORN_NOMAD_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe(
      'nomad target: ACL token, sent only as `X-Nomad-Token` to NORN_NOMAD_ADDR; never in logs, events or API answers. Needs submit-job, read-job and variables write in the namespace.',
    ),
  NORN_NOMAD_REGION: z
    .string()
    .min(1)
    .optional()
    .describe("nomad target: the region jobs go to (default: the agent's)."),
  NORN_NOMAD_NAMESPACE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'nomad target: the namespace jobs and their secrets (Variables) go to (default: `default`).',
    ),
  NORN_NOMAD_CACERT: z
    .string()
    .min(1)
    .optional()
    .describe("nomad target: PEM file of the CA that signed Nomad's TLS certificate."),
  NORN_NOMAD_PURGE: z
    .enum(['true', 'false'])
    .default('false')
    .describe(
      'nomad target: whether teardown (and a roll back of a first release) purges jobs instead of stopping them (a stopped job keeps its versions until Nomad garbage-collects it).',
    ),
  NORN_CONSUL_ADDR: z
    .string()
    .url()
    .optional()
    .describe(
      "nomad target: Consul's HTTP API. Set: services are registered in Consul (provider consul) and routes are read from its passing instances; unset: Nomad's own service discovery (provider nomad).",
    ),
  NORN_CONSUL_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe('nomad target: Consul ACL token, sent only as `X-Consul-Token` to NORN_CONSUL_ADDR.'),
  NORN_CONSUL_CACERT: z
    .string()
    .min(1)
    .optional()
    .describe("nomad target: PEM file of the CA that signed Consul's TLS certificate."),
  NORN_REGISTRY_URL: z
    .string()
    .min(1)
    .default('127.0.0.1:5000')
    .describe('Registry images are pushed to, as host[:port][/namespace].'),
  NORN_REGISTRY_USERNAME: z
    .string()
    .min(1)
    .optional()
    .describe('Registry credentials (both or neither). The password never reaches logs or events.'),
  NORN_REGISTRY_PASSWORD: z
    .string()
    .min(1)
    .optional()
    .describe('Registry password (with NORN_REGISTRY_USERNAME).'),
  // Tokens are bound to hosts: a spec may name any server, and a token sent there is collected.
  NORN_GIT_CREDENTIALS: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Git tokens for private https repos, each bound to one host[:port] (no port: the default one, 443 for https): a JSON object `{"github.com":"ghp_…","git.example.com:3000":"…"}` or `github.com=ghp_…,gitlab.com=glpat-…`. A token goes only to its host, over https (plain http only to loopback), when the server asks; never in URLs, argv or logs.',
    ),
  NORN_GIT_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe(
      'One git token for the hosts in NORN_GIT_TOKEN_HOSTS (required with it); same rules as NORN_GIT_CREDENTIALS.',
    ),
  NORN_GIT_TOKEN_HOSTS: z
    .string()
    .min(1)
    .optional()
    .describe('Comma-separated host[:port] list NORN_GIT_TOKEN may be sent to, e.g. `github.com`.'),
  NORN_GIT_SSH_KEY: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Private key (text or path) for private ssh repos. Not bound to hosts: ssh proves the key without sending it.',
    ),
  NORN_APP_DATABASE_URL: z
    .string()
    .url()
    .optional()
    .describe(
      "Admin URL of the PostgreSQL server holding apps' databases (infrastructure.postgres). An app's processes get their database on it as the secret DATABASE_URL (this URL with the database swapped in, password kept), unless the app sets DATABASE_URL itself.",
    ),
  NORN_SNAPSHOT_DIR: z
    .string()
    .min(1)
    .default('.norn/snapshots')
    .describe('Where pg_dump snapshots are kept, one folder per app.'),
  NORN_CLOUDFLARED_CONFIG: z
    .string()
    .min(1)
    .optional()
    .describe('cloudflared config file the forge step writes ingress rules into.'),
  NORN_CLOUDFLARED_RESTART: z
    .string()
    .min(1)
    .optional()
    .describe('Tunnel restart command as a JSON argv, e.g. ["systemctl","restart","cloudflared"].'),
  NORN_CLOUDFLARED_NAMESPACE: z
    .string()
    .min(1)
    .default('cloudflared')
    .describe(
      'kubernetes target: namespace of the cloudflared ConfigMap and Deployment the forge and teardown pipelines edit and restart.',
    ),
  NORN_CLOUDFLARED_CONFIGMAP: z
    .string()
    .min(1)
    .default('cloudflared')
    .describe(
      "kubernetes target: the ConfigMap holding cloudflared's config (key `config.yaml`) that forge adds the app's ingress rule to.",
    ),
  NORN_CLOUDFLARED_DEPLOYMENT: z
    .string()
    .min(1)
    .default('cloudflared')
    .describe(
      'kubernetes target: the cloudflared Deployment forge and teardown restart (as `kubectl rollout restart` does) after editing its ConfigMap.',
    ),
  NORN_TUNNEL_NAME: z
    .string()
    .min(1)
    .default('norn')
    .describe(
      "Tunnel the forge pipeline routes an app's external host to (`cloudflared tunnel route dns <tunnel> <host>`).",
    ),
  NORN_TOFU_BIN: z
    .string()
    .min(1)
    .default('tofu')
    .describe(
      'OpenTofu executable the GitOps steps run (fmt, init, validate, plan, show, apply): a path, or a name looked up on PATH.',
    ),
  NORN_PUBLIC_URL: z
    .string()
    .refine((u) => URL.canParse(u) && ['http:', 'https:'].includes(new URL(u).protocol), {
      message: 'must be an http(s) URL',
    })
    .optional()
    .describe(
      "The api's address as reviewers reach it (https://norn.example.com): pull request comments link to their full plan there. Unset, comments name the plan's id and path only.",
    ),
  // A webhook URL's path is often its credential: only its host is ever logged or stored.
  NORN_ALERT_WEBHOOK_URLS: urlList
    .optional()
    .describe(
      'Comma-separated http(s) webhook URLs every alert (drift, failed release or verify, revert) is POSTed to, e.g. a Slack incoming webhook. Only their hosts appear in logs and in GET /api/alerts.',
    ),
  NORN_ALERT_SECRET: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'Signs each alert: `X-Norn-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, as GitHub signs webhooks. Never logged or stored.',
    ),
  NORN_HEALTH_POLL_MS: int(50).default(1_000).describe('How often the healthy step probes (ms).'),
  NORN_CADDY_ADMIN_URL: z
    .string()
    .url()
    .default('http://127.0.0.1:2019')
    .describe(
      "docker target: the admin API of the Docker host's ingress proxy (Caddy, started by script/docker-up). Keep it on loopback: whoever reaches it can reroute every app.",
    ),
  NORN_DRAIN_MS: int(0)
    .default(2_000)
    .describe(
      'docker target: how long a replaced replica keeps serving its in-flight requests after it left its route, before it is stopped (ms). Shorter than your slowest request drops that request.',
    ),
  NORN_DOCKER_REPLICA_PORTS: z
    .string()
    .regex(/^\d+-\d+$/)
    .default('61000-64999')
    .describe(
      "docker target: the host ports replicas listen on (`first-last`), behind the ingress proxy; keep it clear of the kernel's ephemeral range and of the ports apps declare.",
    ),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino level.'),
  LOG_FORMAT: z
    .enum(['json', 'pretty'])
    .default('json')
    .describe(
      'json: one JSON object per line (for a log pipeline); pretty: time, level, the run, scope, pipeline, step and attempt, then the message and the other fields, for a person at a terminal.',
    ),
});

export type Env = z.output<typeof EnvSchema>;

/** The variables the nomad target reads (src/targets/nomad/client.ts). */
export type NomadEnv = Partial<
  Record<
    | 'NORN_NOMAD_ADDR'
    | 'NORN_NOMAD_TOKEN'
    | 'NORN_NOMAD_REGION'
    | 'NORN_NOMAD_NAMESPACE'
    | 'NORN_NOMAD_CACERT'
    | 'NORN_NOMAD_PURGE'
    | 'NORN_CONSUL_ADDR'
    | 'NORN_CONSUL_TOKEN'
    | 'NORN_CONSUL_CACERT',
    string | undefined
  >
>;

export interface Config {
  http: { port: number; host: string; apiToken: string | undefined; maxBodyBytes: number };
  redisUrl: string;
  databaseUrl: string;
  dbRetryMs: number;
  queuePrefix: string;
  worker: {
    concurrency: number;
    shutdownGraceMs: number;
    lockDurationMs: number;
    stalledIntervalMs: number;
    maxStalledCount: number;
    /** NORN_WORKER_METRICS_PORT: where a worker serves its own metrics (undefined: it does not). */
    metricsPort: number | undefined;
  };
  lease: { ttlMs: number; heartbeatMs: number };
  sweepIntervalMs: number;
  cancelGraceMs: number;
  hooks: { pollMs: number; attempts: number; backoffMs: number; timeoutMs: number };
  recordDelayMs: number;
  wsHeartbeatMs: number;
  wsMaxBufferedBytes: number;
  sessionTtlS: number;
  uiDir: string;
  migrateOnStart: boolean;
  /** NORN_WEBHOOK_SECRET. */
  webhookSecret: string | undefined;
  /** NORN_METRICS_PUBLIC: /metrics without the token. */
  metricsPublic: boolean;
  pipelinesModule: string | undefined;
  deployPipeline: string;
  deploy: {
    workDir: string;
    dockerSocket: string;
    kubeContext: string | undefined;
    /** Where the nomad target finds Nomad and Consul (NORN_NOMAD_ADDR …). */
    nomad: NomadEnv;
    registryUrl: string;
    registryAuth: { username: string; password: string } | undefined;
    gitCredentials: GitCredential[];
    gitSshKey: string | undefined;
    appDatabaseUrl: string | undefined;
    snapshotDir: string;
    cloudflaredConfig: string | undefined;
    cloudflaredRestart: string | undefined;
    /** The cloudflared objects on the kubernetes target (NORN_CLOUDFLARED_NAMESPACE …). */
    kubeCloudflared: { namespace: string; configMap: string; deployment: string };
    tunnelName: string;
    healthPollMs: number;
    /** The docker target's ingress proxy (NORN_CADDY_ADMIN_URL, NORN_DRAIN_MS, NORN_DOCKER_REPLICA_PORTS). */
    ingress: {
      caddyAdminUrl: string;
      drainMs: number;
      replicaPorts: { first: number; last: number };
    };
  };
  /** The OpenTofu CLI the GitOps steps drive (NORN_TOFU_BIN), and where links point (NORN_PUBLIC_URL). */
  gitops: { tofuBin: string; publicUrl: string | undefined };
  /** Where alerts go (NORN_ALERT_WEBHOOK_URLS) and what signs them (NORN_ALERT_SECRET). */
  alerts: { urls: string[]; secret: string | undefined };
  logLevel: Env['LOG_LEVEL'];
  logFormat: Env['LOG_FORMAT'];
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
export const isLoopback = (host: string) => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

/** Parses the environment; throws one CONFIG_INVALID error listing every problem. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = EnvSchema.safeParse(cleaned);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  if (parsed.success) {
    const e = parsed.data;
    if (!e.NORN_API_TOKEN && !isLoopback(e.HOST)) {
      problems.push(
        `NORN_API_TOKEN: required when HOST is not loopback (HOST=${e.HOST}); without a token the api only binds to 127.0.0.1`,
      );
    }
    if (!!e.NORN_REGISTRY_USERNAME !== !!e.NORN_REGISTRY_PASSWORD) {
      problems.push('NORN_REGISTRY_USERNAME / NORN_REGISTRY_PASSWORD: set both or neither');
    }
    if (e.NORN_CLOUDFLARED_RESTART) {
      let argv: unknown;
      try {
        argv = JSON.parse(e.NORN_CLOUDFLARED_RESTART);
      } catch {
        argv = undefined;
      }
      if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) {
        problems.push(
          'NORN_CLOUDFLARED_RESTART: must be a JSON array of strings, e.g. ["systemctl","restart","cloudflared"]',
        );
      }
    }
    const [first, last] = e.NORN_DOCKER_REPLICA_PORTS.split('-').map(Number) as [number, number];
    if (first < 1024 || last > 65535 || first > last)
      problems.push(
        'NORN_DOCKER_REPLICA_PORTS: must be first-last with 1024 <= first <= last <= 65535',
      );
    problems.push(...parseGitCredentials(e).problems);
    if (e.NORN_LEASE_HEARTBEAT_MS * 2 > e.NORN_LEASE_TTL_MS) {
      problems.push(
        'NORN_LEASE_HEARTBEAT_MS: must be at most half of NORN_LEASE_TTL_MS, or leases expire between heartbeats',
      );
    }
  }
  if (problems.length > 0 || !parsed.success) {
    throw new NornError('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    });
  }
  const e = parsed.data;
  return {
    http: {
      port: e.PORT,
      host: e.HOST,
      apiToken: e.NORN_API_TOKEN,
      maxBodyBytes: e.NORN_MAX_BODY_BYTES,
    },
    redisUrl: e.REDIS_URL,
    databaseUrl: e.DATABASE_URL,
    dbRetryMs: e.NORN_DB_RETRY_MS,
    queuePrefix: e.NORN_QUEUE_PREFIX,
    worker: {
      concurrency: e.NORN_WORKER_CONCURRENCY,
      metricsPort: e.NORN_WORKER_METRICS_PORT,
      shutdownGraceMs: e.NORN_SHUTDOWN_GRACE_MS,
      lockDurationMs: e.NORN_LOCK_DURATION_MS,
      stalledIntervalMs: e.NORN_STALLED_INTERVAL_MS,
      maxStalledCount: e.NORN_MAX_STALLED_COUNT,
    },
    lease: { ttlMs: e.NORN_LEASE_TTL_MS, heartbeatMs: e.NORN_LEASE_HEARTBEAT_MS },
    sweepIntervalMs: e.NORN_SWEEP_INTERVAL_MS,
    cancelGraceMs: e.NORN_CANCEL_GRACE_MS,
    hooks: {
      pollMs: e.NORN_HOOK_POLL_MS,
      attempts: e.NORN_HOOK_ATTEMPTS,
      backoffMs: e.NORN_HOOK_BACKOFF_MS,
      timeoutMs: e.NORN_HOOK_TIMEOUT_MS,
    },
    recordDelayMs: e.NORN_RECORD_DELAY_MS,
    wsHeartbeatMs: e.NORN_WS_HEARTBEAT_MS,
    wsMaxBufferedBytes: e.NORN_WS_MAX_BUFFERED_BYTES,
    sessionTtlS: e.NORN_SESSION_TTL_S,
    uiDir: e.NORN_UI_DIR ?? fileURLToPath(new URL('../../dist/ui', import.meta.url)),
    migrateOnStart: e.NORN_MIGRATE_ON_START,
    webhookSecret: e.NORN_WEBHOOK_SECRET,
    metricsPublic: e.NORN_METRICS_PUBLIC,
    pipelinesModule: e.NORN_PIPELINES_MODULE,
    deployPipeline: e.NORN_DEPLOY_PIPELINE,
    deploy: {
      workDir: e.NORN_WORK_DIR,
      dockerSocket: e.NORN_DOCKER_SOCKET,
      kubeContext: e.NORN_KUBE_CONTEXT,
      nomad: {
        NORN_NOMAD_ADDR: e.NORN_NOMAD_ADDR,
        NORN_NOMAD_TOKEN: e.NORN_NOMAD_TOKEN,
        NORN_NOMAD_REGION: e.NORN_NOMAD_REGION,
        NORN_NOMAD_NAMESPACE: e.NORN_NOMAD_NAMESPACE,
        NORN_NOMAD_CACERT: e.NORN_NOMAD_CACERT,
        NORN_NOMAD_PURGE: e.NORN_NOMAD_PURGE,
        NORN_CONSUL_ADDR: e.NORN_CONSUL_ADDR,
        NORN_CONSUL_TOKEN: e.NORN_CONSUL_TOKEN,
        NORN_CONSUL_CACERT: e.NORN_CONSUL_CACERT,
      },
      registryUrl: e.NORN_REGISTRY_URL,
      registryAuth:
        e.NORN_REGISTRY_USERNAME && e.NORN_REGISTRY_PASSWORD
          ? { username: e.NORN_REGISTRY_USERNAME, password: e.NORN_REGISTRY_PASSWORD }
          : undefined,
      gitCredentials: parseGitCredentials(e).credentials,
      gitSshKey: e.NORN_GIT_SSH_KEY,
      appDatabaseUrl: e.NORN_APP_DATABASE_URL,
      snapshotDir: e.NORN_SNAPSHOT_DIR,
      cloudflaredConfig: e.NORN_CLOUDFLARED_CONFIG,
      cloudflaredRestart: e.NORN_CLOUDFLARED_RESTART,
      kubeCloudflared: {
        namespace: e.NORN_CLOUDFLARED_NAMESPACE,
        configMap: e.NORN_CLOUDFLARED_CONFIGMAP,
        deployment: e.NORN_CLOUDFLARED_DEPLOYMENT,
      },
      tunnelName: e.NORN_TUNNEL_NAME,
      healthPollMs: e.NORN_HEALTH_POLL_MS,
      ingress: {
        caddyAdminUrl: e.NORN_CADDY_ADMIN_URL,
        drainMs: e.NORN_DRAIN_MS,
        replicaPorts: {
          first: Number(e.NORN_DOCKER_REPLICA_PORTS.split('-')[0]),
          last: Number(e.NORN_DOCKER_REPLICA_PORTS.split('-')[1]),
        },
      },
    },
    gitops: { tofuBin: e.NORN_TOFU_BIN, publicUrl: e.NORN_PUBLIC_URL?.replace(/\/+$/, '') },
    alerts: { urls: e.NORN_ALERT_WEBHOOK_URLS ?? [], secret: e.NORN_ALERT_SECRET },
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
  };
}
