/**
 * The infraspec v2 schema: one app per `infraspec.yaml`. Every object is strict, so a misspelt key
 * is reported instead of silently ignored (the Go norn ignored them, and `procesess:` deployed an
 * app with no processes). Defaults are applied on parse, so consumers never re-derive them.
 */
import { z } from 'zod';
import {
  atMost,
  dnsName,
  duration,
  envKey,
  envMap,
  repoPath,
  shortText,
  storageSize,
  noRepeats,
  text,
  whenArray,
  whenObject,
} from './fields.js';
import { SPEC_LIMITS } from './limits.js';
import { endpointUrl, gitRef, hostName, repoUrl, webUrl } from './remote.js';
import { appRules, deployPolicyRules, processRules } from './rules.js';
import { cronSchedule, timeZone } from './schedule.js';

const wholeNumber = (min: number, max: number) => z.number().int().min(min).max(max);

const command = () => text({ max: SPEC_LIMITS.commandLength, kind: 'script' });

const Repo = z.strictObject({
  url: repoUrl,
  /**
   * The branch the app follows. Unset: the repository's default branch (a deploy without a ref
   * clones the remote's HEAD; a webhook names the default branch in its payload). Never assumed.
   */
  branch: gitRef.optional(),
  /** A push to the branch deploys the pushed commit (webhooks, src/gitops/subscribers.ts). */
  autoDeploy: z.boolean().default(false),
  repoWeb: webUrl.optional(),
  /**
   * The secret the forge signs this repository's webhooks with. Write-only: the api keeps it in a
   * column of its own and strips it from the stored and returned spec (src/gitops/app-secret.ts).
   */
  webhookSecret: text({ max: SPEC_LIMITS.shortText }).optional(),
});

const Build = z.strictObject({
  dockerfile: repoPath({ file: true }).default('Dockerfile'),
  /** Run in the built image before anything is replaced; a non-zero exit fails the deploy. */
  test: command().optional(),
});

const Health = z.strictObject({
  path: text({ max: SPEC_LIMITS.pathLength }).startsWith(
    '/',
    'must start with "/" (for example /healthz)',
  ),
  interval: duration({ positive: true, max: '1h' }).default('10s'),
  /** How long one probe may take. */
  timeout: duration({ positive: true, max: '5m' }).default('5s'),
});

const Resources = z.strictObject({
  /** CPU share in MHz, as Nomad counts it. */
  cpu: wholeNumber(1, SPEC_LIMITS.cpu).default(100),
  /** Memory limit in MB. */
  memory: wholeNumber(1, SPEC_LIMITS.memory).default(128),
});

const Process = z
  .strictObject({
    port: wholeNumber(1, 65535).optional(),
    /** Run as `/bin/sh -c <command>`, replacing the image CMD; absent means the image CMD. */
    command: command().optional(),
    schedule: cronSchedule.optional(),
    timezone: timeZone.optional(),
    health: Health.optional(),
    replicas: wholeNumber(0, SPEC_LIMITS.replicas).default(1),
    resources: Resources.prefault({}),
    env: envMap.optional(),
  })
  .superRefine(processRules, whenObject);

const processes = z
  .record(dnsName, Process)
  .superRefine(atMost(SPEC_LIMITS.processes, 'processes'))
  .refine((map) => Object.keys(map).length > 0, 'must declare at least one process');

const secrets = z
  .array(envKey)
  .superRefine(atMost(SPEC_LIMITS.secrets, 'secrets'))
  .superRefine(
    noRepeats(
      (key: unknown) => (typeof key === 'string' ? key : undefined),
      (first) => `is already listed at secrets[${first}]`,
    ),
    whenArray,
  );

/** Databases every PostgreSQL server has, which no app may take over. */
const RESERVED_DATABASES = ['template0', 'template1'];

/** Only postgres today; further backing services become sibling keys here. */
const Infrastructure = z.strictObject({
  postgres: z
    .strictObject({
      database: text({ max: 63 })
        .regex(
          /^[a-zA-Z_][a-zA-Z0-9_]*$/,
          'may only use letters, digits and "_", and must not start with a digit',
        )
        .refine(
          (name) => !RESERVED_DATABASES.includes(name.toLowerCase()),
          "is a template database of every PostgreSQL server; choose a database of the app's own",
        ),
    })
    .optional(),
});

const Endpoint = z.strictObject({
  url: endpointUrl,
  region: shortText().optional(),
});

const Hosts = z.strictObject({
  internal: hostName.optional(),
  external: hostName.optional(),
});

/** What a volume without hostPath claims, when it says no size. */
export const DEFAULT_VOLUME_SIZE = '1Gi';

/** A volume as parsed: a hostPath on the node, or a claim of `size`. */
type VolumeOut = { name: string; mount: string; readOnly: boolean } & (
  { hostPath: string; size?: undefined } | { hostPath?: undefined; size: string }
);

const Volume = z
  .strictObject({
    /** Docker's rule for volume names (at least two characters). */
    name: text({ max: 128 }).regex(
      /^[A-Za-z0-9][A-Za-z0-9_.-]+$/,
      'must be at least 2 letters, digits, "_", "." or "-", starting with a letter or digit',
    ),
    mount: text({ max: SPEC_LIMITS.pathLength })
      .startsWith('/', 'must be an absolute path inside the container (for example /data)')
      .refine(
        (mount) => mount !== '/' && !mount.includes(':') && !mount.split('/').includes('..'),
        'must be a directory below "/" without ":" or ".." in it',
      ),
    readOnly: z.boolean().default(false),
    /**
     * kubernetes: a directory of the node the pod runs on (created when missing) instead of a
     * PersistentVolumeClaim.
     */
    hostPath: text({ max: SPEC_LIMITS.pathLength })
      .startsWith('/', 'must be an absolute path on the node (for example /srv/shop)')
      .refine((path) => !path.split('/').includes('..'), 'must not contain ".." in it')
      .optional(),
    /** kubernetes: the storage the volume's PersistentVolumeClaim requests (default 1Gi). */
    size: storageSize.optional(),
  })
  .superRefine((v, ctx) => {
    if (v.hostPath !== undefined && v.size !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['size'],
        message:
          'is what a PersistentVolumeClaim requests; a hostPath volume is a directory of the node and has no size (leave out size or hostPath)',
      });
  }, whenObject)
  // A claim gets its default size; a hostPath volume has none.
  .transform(({ hostPath, size, ...v }): VolumeOut =>
    hostPath !== undefined ? { ...v, hostPath } : { ...v, size: size ?? DEFAULT_VOLUME_SIZE },
  );

/** Where a volume's data lives: a hostPath, or a claim of a size (to tell repeats apart). */
const volumeSource = (v: { hostPath?: unknown; size?: unknown }) =>
  v.hostPath !== undefined
    ? `hostPath ${String(v.hostPath)}`
    : `a claim of ${String(v.size ?? DEFAULT_VOLUME_SIZE)}`;

const volumes = z
  .array(Volume)
  .superRefine(atMost(SPEC_LIMITS.volumes, 'volumes'))
  .superRefine(
    noRepeats(
      (volume: { mount?: unknown }) =>
        typeof volume?.mount === 'string' ? volume.mount.replace(/\/+$/, '') : undefined,
      (first) => `is already used by volumes[${first}]; two volumes cannot share a mount point`,
      ['mount'],
    ),
    whenArray,
  )
  .superRefine((list: unknown[], ctx) => {
    // One name is one volume: mounted twice, it must be the same data both times.
    const first = new Map<string, { index: number; source: string }>();
    list.forEach((v, index) => {
      if (typeof v !== 'object' || v === null) return;
      const { name } = v as { name?: unknown };
      if (typeof name !== 'string') return;
      const source = volumeSource(v);
      const seen = first.get(name);
      if (!seen) first.set(name, { index, source });
      else if (seen.source !== source)
        ctx.addIssue({
          code: 'custom',
          path: [index],
          message: `names volume ${name} again, as volumes[${seen.index}] does, but with ${source} instead of ${seen.source}; one name is one volume (give this one its own name)`,
        });
    });
  }, whenArray);

const Snapshots = z.strictObject({
  /** How many database snapshots to keep per app; older ones are pruned. */
  keep: wholeNumber(1, SPEC_LIMITS.snapshotsKeep).default(5),
});

const DeployPolicy = z
  .strictObject({
    /** Revert to the previous release when the new one never becomes healthy. */
    autoRollback: z.boolean().default(true),
    /** What a new deploy does while one is running: wait, cancel the running one, or be refused. */
    concurrency: z.enum(['queue', 'supersede', 'reject']).default('queue'),
    /**
     * How long every replica must stay healthy before the release counts as verified. Zero is
     * refused: it would verify a release on one look, which is not watching it.
     */
    minHealthyTime: duration({
      positive:
        'must be longer than zero: the healthy step watches a new release this long before it counts as verified, and a release nobody watched is not verified (use e.g. 5s for a quick check)',
      max: '24h',
    }).default('30s'),
    /** How long to wait for the new release to become healthy before giving up. */
    healthTimeout: duration({ positive: true, max: '24h' }).default('5m'),
  })
  .superRefine(deployPolicyRules, whenObject);

/** Where the kubernetes target puts the app (the other targets ignore it). */
const Kubernetes = z.strictObject({
  namespace: dnsName.default('default'),
});

export const TARGETS = ['docker', 'kubernetes', 'nomad'] as const;

const target = z.enum(TARGETS);

export const InfraspecSchema = z
  .strictObject({
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
    endpoints: z.array(Endpoint).superRefine(atMost(SPEC_LIMITS.endpoints, 'endpoints')).optional(),
    hosts: Hosts.optional(),
    volumes: volumes.optional(),
    snapshots: Snapshots.prefault({}),
    deployPolicy: DeployPolicy.prefault({}),
    kubernetes: Kubernetes.prefault({}),
    /** Where the app runs; absent means norn decides at deploy time. */
    target: target.optional(),
  })
  .superRefine(appRules, whenObject);

export type Infraspec = z.output<typeof InfraspecSchema>;
export type InfraspecProcess = Infraspec['processes'][string];
export type InfraspecVolume = NonNullable<Infraspec['volumes']>[number];
export type DeployTarget = (typeof TARGETS)[number];
