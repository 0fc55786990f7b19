/**
 * The infraspec v2 schema: one app per `infraspec.yaml`. Every object is strict, so a misspelt key
 * is reported instead of silently ignored (the Go norn ignored them, and `procesess:` deployed an
 * app with no processes). Defaults are applied on parse, so consumers never re-derive them.
 */
import { z } from 'zod';
import {
  cronSchedule,
  dnsName,
  duration,
  endpointUrl,
  envKey,
  envMap,
  nonEmpty,
  repoPath,
  repoUrl,
  timeZone,
} from './fields.js';

/**
 * Cross-field rules must run even when one of the fields already failed (every problem is reported
 * at once), but only when the value has the right shape, since zod otherwise skips them.
 */
const whenObject = {
  when: (p: { value: unknown }) =>
    typeof p.value === 'object' && p.value !== null && !Array.isArray(p.value),
};
const whenArray = { when: (p: { value: unknown }) => Array.isArray(p.value) };

const positiveInt = () => z.number().int().min(1);

const Repo = z.strictObject({
  url: repoUrl,
  branch: nonEmpty().default('main'),
  autoDeploy: z.boolean().default(false),
  repoWeb: nonEmpty().optional(),
});

const Build = z.strictObject({
  dockerfile: repoPath().default('Dockerfile'),
  /** A command run in the cloned tree after the build; a non-zero exit fails the deploy. */
  test: nonEmpty().optional(),
});

const Health = z.strictObject({
  path: z.string().startsWith('/', 'must start with "/" (for example /healthz)'),
  interval: duration({ positive: true }).default('10s'),
  timeout: duration({ positive: true }).default('5s'),
});

const Resources = z.strictObject({
  /** CPU share in MHz, as Nomad counts it. */
  cpu: positiveInt().default(100),
  /** Memory limit in MB. */
  memory: positiveInt().default(128),
});

/** Shape of a process before cross-field rules, for typing the refinement. */
type ProcessFields = { port?: unknown; schedule?: unknown; replicas?: unknown };

/**
 * A scheduled process is started fresh on each tick and exits when done: nothing can route
 * traffic to it, and several copies would run the same job several times per tick.
 */
function scheduledProcessRules(process: ProcessFields, ctx: z.RefinementCtx): void {
  if (typeof process.schedule !== 'string') return;
  if (process.port !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['port'],
      message:
        'a scheduled process (one with a schedule) runs as a job on each tick and serves no traffic, so it cannot have a port',
    });
  }
  if (typeof process.replicas === 'number' && process.replicas > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['replicas'],
      message:
        'a scheduled process runs one copy per tick; more replicas would run the job several times at once (use 0 or 1)',
    });
  }
}

const Process = z
  .strictObject({
    port: z.number().int().min(1).max(65535).optional(),
    /** Run as `/bin/sh -c <command>`, replacing the image CMD; absent means the image CMD. */
    command: nonEmpty().optional(),
    schedule: cronSchedule.optional(),
    timezone: timeZone.optional(),
    health: Health.optional(),
    replicas: z.number().int().min(0).default(1),
    resources: Resources.prefault({}),
    env: envMap.optional(),
  })
  .superRefine(scheduledProcessRules, whenObject);

const processes = z
  .record(dnsName, Process)
  .refine((map) => Object.keys(map).length > 0, 'must declare at least one process');

const secrets = z.array(envKey).superRefine((keys, ctx) => {
  keys.forEach((key, index) => {
    if (typeof key !== 'string') return;
    const first = keys.indexOf(key);
    if (first !== index)
      ctx.addIssue({
        code: 'custom',
        path: [index],
        message: `"${key}" is already listed at secrets[${first}]`,
      });
  });
}, whenArray);

/** Only postgres today; further backing services become sibling keys here. */
const Infrastructure = z.strictObject({
  postgres: z
    .strictObject({
      database: z
        .string()
        .max(63, 'must be at most 63 characters (the PostgreSQL limit)')
        .regex(
          /^[a-zA-Z_][a-zA-Z0-9_]*$/,
          'may only use letters, digits and "_", and must not start with a digit',
        ),
    })
    .optional(),
});

const Endpoint = z.strictObject({
  url: endpointUrl,
  region: nonEmpty().optional(),
});

const Hosts = z.strictObject({
  internal: nonEmpty().optional(),
  external: nonEmpty().optional(),
});

const Volume = z.strictObject({
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
      'may only use letters, digits, "_", "." and "-", and must start with a letter or digit',
    ),
  mount: z
    .string()
    .startsWith('/', 'must be an absolute path inside the container (for example /data)'),
  readOnly: z.boolean().default(false),
});

const volumes = z.array(Volume).superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((volume, index) => {
    if (typeof volume?.mount !== 'string') return;
    const first = seen.get(volume.mount);
    if (first === undefined) seen.set(volume.mount, index);
    else
      ctx.addIssue({
        code: 'custom',
        path: [index, 'mount'],
        message: `is already used by volumes[${first}]; two volumes cannot share a mount point`,
      });
  });
}, whenArray);

const Snapshots = z.strictObject({
  /** How many database snapshots to keep per app; older ones are pruned. */
  keep: positiveInt().default(5),
});

const DeployPolicy = z.strictObject({
  /** Revert to the previous release when the new one never becomes healthy. */
  autoRollback: z.boolean().default(true),
  /** What a new deploy does while one is running: wait, cancel the running one, or be refused. */
  concurrency: z.enum(['queue', 'supersede', 'reject']).default('queue'),
  /** How long a new instance must stay healthy before it counts as healthy. */
  minHealthyTime: duration().default('30s'),
  /** How long to wait for the new release to become healthy before giving up. */
  healthTimeout: duration({ positive: true }).default('5m'),
});

export const TARGETS = ['docker', 'kubernetes', 'nomad'] as const;

export const InfraspecSchema = z.strictObject({
  name: dnsName,
  /** Accepted for compatibility with the Go norn, which skipped apps without `deploy: true`. */
  deploy: z.boolean().optional(),
  repo: Repo.optional(),
  build: Build.prefault({}),
  processes,
  env: envMap.optional(),
  secrets: secrets.optional(),
  /** Directory in the repository holding the app's `*.sql` migration files. */
  migrations: repoPath().optional(),
  infrastructure: Infrastructure.optional(),
  endpoints: z.array(Endpoint).optional(),
  hosts: Hosts.optional(),
  volumes: volumes.optional(),
  snapshots: Snapshots.prefault({}),
  deployPolicy: DeployPolicy.prefault({}),
  /** Where the app runs; absent means norn decides at deploy time. */
  target: z.enum(TARGETS).optional(),
});

export type Infraspec = z.output<typeof InfraspecSchema>;
export type InfraspecProcess = Infraspec['processes'][string];
export type DeployTarget = (typeof TARGETS)[number];
