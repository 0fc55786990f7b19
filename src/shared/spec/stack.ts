/**
 * The stack spec (issue 11, GitOps): an infrastructure directory of a git repository that norn
 * plans on pull requests, applies on merge and checks for drift on a schedule. Built like the
 * infraspec: strict objects (a misspelt key is reported), the same field rules and limits, every
 * problem with its path, defaults applied on parse. `webhookSecret` is parsed here but stored in
 * a column of its own and never answered back (StackStore).
 */
import { z } from 'zod';
import { parseDocument } from './document.js';
import {
  atMost,
  dnsName,
  duration,
  envKey,
  noRepeats,
  repoPath,
  shortText,
  text,
  textProblem,
  whenArray,
  whenObject,
} from './fields.js';
import { SPEC_LIMITS } from './limits.js';
import type { SpecProblem } from './problems.js';
import { gitRef, repoUrl, webUrl } from './remote.js';
import {
  cronSchedule,
  DEFAULT_TIME_ZONE,
  isTimeZone,
  scheduleProblem,
  timeZone,
} from './schedule.js';

export const STACK_ENGINES = ['opentofu'] as const;
export const FEEDBACK_PROVIDERS = ['github', 'gitlab', 'gitea'] as const;
export type FeedbackProvider = (typeof FEEDBACK_PROVIDERS)[number];

/** Where each provider's API is when the spec names none; Gitea is always self-hosted. */
export const DEFAULT_API_URL: Record<FeedbackProvider, string | undefined> = {
  github: 'https://api.github.com',
  gitlab: 'https://gitlab.com',
  gitea: undefined,
};

export const DEFAULT_DRIFT_SCHEDULE = '0 6 * * *';

export const STACK_LIMITS = { images: 32, verify: 32, runnerTags: 32, webhookSecret: 1024 };

/** A shared secret shorter than this is guessable enough to forge webhook signatures with. */
const MIN_SECRET = 16;

const OWNER_NAME = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
/** GitLab: a numeric project id, or its full path (groups and subgroups, then the project). */
const GITLAB_PROJECT = /^(?:[0-9]+|[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)+)$/;

const Repo = z.strictObject({
  url: repoUrl,
  /** Unset: whatever the repository's default branch is (HEAD of the remote), never a guess. */
  branch: gitRef.optional(),
});

const Feedback = z
  .strictObject({
    provider: z.enum(FEEDBACK_PROVIDERS),
    /** owner/name; on GitLab the project's path (group/subgroup/project) or numeric id. */
    repo: text({ max: SPEC_LIMITS.shortText }),
    apiUrl: webUrl.optional(),
    /** The NAME of the environment variable holding the token; the token never enters a spec. */
    tokenEnv: envKey,
  })
  .superRefine((f, ctx) => {
    const known = (FEEDBACK_PROVIDERS as readonly unknown[]).includes(f.provider);
    const pattern = f.provider === 'gitlab' ? GITLAB_PROJECT : OWNER_NAME;
    if (known && typeof f.repo === 'string' && !pattern.test(f.repo))
      ctx.addIssue({
        code: 'custom',
        path: ['repo'],
        message:
          f.provider === 'gitlab'
            ? 'must be the project path (group/project, subgroups allowed) or its numeric id'
            : 'must be owner/name, such as acme/infra',
      });
    if (f.provider === 'gitea' && f.apiUrl === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['apiUrl'],
        message:
          'is required for gitea: a Gitea server has no public default (e.g. https://git.example.com)',
      });
  }, whenObject)
  .transform((f) => ({ ...f, apiUrl: f.apiUrl ?? DEFAULT_API_URL[f.provider]! }));

const Drift = z
  .strictObject({
    schedule: cronSchedule.default(DEFAULT_DRIFT_SCHEDULE),
    timezone: timeZone.default(DEFAULT_TIME_ZONE),
  })
  .superRefine((d, ctx) => {
    // A field that failed on its own is reported there already.
    if (typeof d.schedule !== 'string' || textProblem(d.schedule, SPEC_LIMITS.shortText)) return;
    if (typeof d.timezone !== 'string' || !isTimeZone(d.timezone)) return;
    const problem = scheduleProblem(d.schedule, d.timezone);
    if (problem) ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
  }, whenObject);

const Image = z.strictObject({
  name: dnsName,
  dockerfile: repoPath({ file: true }).default('Dockerfile'),
});

const images = z
  .array(Image)
  .superRefine(atMost(STACK_LIMITS.images, 'images'))
  .superRefine(
    noRepeats(
      (image: { name?: unknown }) => (typeof image?.name === 'string' ? image.name : undefined),
      (first) => `is already the name of images[${first}]`,
      ['name'],
    ),
    whenArray,
  );

/** How long one probe may take, and how long the check keeps trying before it fails. */
const timeout = () => duration({ positive: true, max: '5m' }).default('10s');
const deadline = () => duration({ positive: true, max: '1h' }).default('5m');

const HttpCheck = z.strictObject({
  url: webUrl,
  status: z.number().int().min(100).max(599).default(200),
  /** Text the response body must contain. */
  contains: text({ max: SPEC_LIMITS.shortText }).optional(),
  timeout: timeout(),
  deadline: deadline(),
});

const PodsCheck = z.strictObject({
  namespace: dnsName.default('default'),
  /** A Kubernetes label selector (app=web,tier!=cache); every pod it picks must be ready. */
  selector: shortText(),
  deadline: deadline(),
});

const RunnerCheck = z.strictObject({
  /** The forge's runner listing, e.g. GitLab's /api/v4/runners?tag_list=infra. */
  url: webUrl,
  tokenEnv: envKey,
  /** Tags an online runner must carry. */
  tags: z.array(shortText()).superRefine(atMost(STACK_LIMITS.runnerTags, 'tags')).optional(),
  deadline: deadline(),
});

const CHECKS = ['http', 'pods', 'runner'] as const;

/** One check per list item, named by its one key: `- http: {...}`. */
const Check = z
  .strictObject({
    http: HttpCheck.optional(),
    pods: PodsCheck.optional(),
    runner: RunnerCheck.optional(),
  })
  .superRefine((c, ctx) => {
    const given = CHECKS.filter((k) => c[k] !== undefined);
    if (given.length !== 1)
      ctx.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? `must name one check: ${CHECKS.join(', ')}`
            : `names ${given.join(' and ')}; each list item is one check (write them as separate items)`,
      });
  }, whenObject);

export const StackSchema = z.strictObject({
  /** The stack's id. */
  name: dnsName,
  repo: Repo,
  /** The stack's directory inside the repository. */
  path: repoPath().default('.'),
  engine: z.enum(STACK_ENGINES).default('opentofu'),
  /**
   * Checks webhook signatures. Write-only: stored apart from the spec, never answered. Left out
   * on an update keeps the stored one; `null` removes it.
   */
  webhookSecret: text({ max: STACK_LIMITS.webhookSecret })
    .min(MIN_SECRET, `must be at least ${MIN_SECRET} characters (it signs webhooks)`)
    .nullable()
    .optional(),
  feedback: Feedback.optional(),
  drift: Drift.prefault({}),
  images: images.optional(),
  verify: z.array(Check).superRefine(atMost(STACK_LIMITS.verify, 'checks')).optional(),
});

export type StackSpecInput = z.output<typeof StackSchema>;
/** A stack as stored and answered: everything but the secret. */
export type StackSpec = Omit<StackSpecInput, 'webhookSecret'>;
export type StackFeedback = NonNullable<StackSpec['feedback']>;
export type StackCheck = NonNullable<StackSpec['verify']>[number];

export type StackParseResult =
  | {
      ok: true;
      spec: StackSpec;
      /** undefined: not given (keep the stored one); null: remove it. */
      webhookSecret: string | null | undefined;
    }
  | { ok: false; problems: SpecProblem[] };

/** Accepts YAML text, JSON text, or an already-parsed object. A string is always read as text. */
export function parseStack(input: string | unknown): StackParseResult {
  const read = parseDocument(input, StackSchema, {
    noun: 'a stack',
    mapping: 'name, repo and path',
  });
  if (!read.ok) return read;
  const { webhookSecret, ...spec } = read.value;
  return { ok: true, spec, webhookSecret };
}
