/** Routes under /api/stacks and /api/plans (paths relative to each). */
import { createRoute, z } from '@hono/zod-openapi';
import { errors, IdParam, intQuery, json } from './http.js';
import {
  DriftView,
  PlanKind,
  PlanList,
  PlanView,
  ReleaseBody,
  RunAccepted,
  RunList,
  StackDeleted,
  StackList,
  StackSaved,
  StackSpecView,
  StackView,
} from './schemas.js';

const params = IdParam('The stack (its spec `name`).');

export const registerStack = createRoute({
  method: 'post',
  path: '/',
  tags: ['stacks'],
  operationId: 'registerStack',
  summary: 'Register a stack from its spec, or replace its spec',
  description:
    'The body is the stack spec as YAML or JSON text. Its `webhookSecret` is stored apart and never answered; absent, the stored one is kept.',
  request: {
    body: {
      required: true,
      content: {
        'application/yaml': {
          schema: z.string().openapi({ description: 'The stack spec as YAML.' }),
        },
        'application/json': { schema: StackSpecView },
      },
    },
  },
  responses: {
    200: json(StackSaved, 'The stack existed; its spec is replaced.'),
    201: json(StackSaved, 'The stack is registered.'),
    ...errors(409),
  },
});

export const listStacks = createRoute({
  method: 'get',
  path: '/',
  tags: ['stacks'],
  operationId: 'listStacks',
  summary: 'List the stacks',
  responses: { 200: json(StackList, 'Every stack, by id.'), ...errors() },
});

export const getStack = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['stacks'],
  operationId: 'getStack',
  summary: 'A stack',
  request: { params },
  responses: { 200: json(StackView, 'The stack.'), ...errors(404) },
});

export const deleteStack = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['stacks'],
  operationId: 'deleteStack',
  summary:
    'Delete a stack, its plans and drift state (refused while a run of it is queued or running)',
  request: { params },
  responses: { 200: json(StackDeleted, 'The stack is deleted.'), ...errors(404, 409) },
});

export const listStackRuns = createRoute({
  method: 'get',
  path: '/{id}/runs',
  tags: ['stacks'],
  operationId: 'listStackRuns',
  summary: "The runs of the stack's scope, newest first",
  request: {
    params,
    query: z.object({ limit: intQuery(1, 200, 'At most this many (default 20).', 20) }),
  },
  responses: { 200: json(RunList, 'The runs.'), ...errors(404) },
});

export const checkStackDrift = createRoute({
  method: 'post',
  path: '/{id}/drift-check',
  tags: ['stacks'],
  operationId: 'checkStackDrift',
  summary: 'Request a drift check (one already waiting answers instead)',
  request: { params },
  responses: { 202: json(RunAccepted, 'The drift-check run.'), ...errors(404, 409, 422) },
});

export const releaseStack = createRoute({
  method: 'post',
  path: '/{id}/release',
  tags: ['stacks'],
  operationId: 'releaseStack',
  summary: "Request a release (plan and apply) at a commit, or the stack's branch",
  request: {
    params,
    body: { required: false, content: { 'application/json': { schema: ReleaseBody } } },
  },
  responses: { 202: json(RunAccepted, 'The release run.'), ...errors(404, 409, 422) },
});

export const getStackDrift = createRoute({
  method: 'get',
  path: '/{id}/drift',
  tags: ['stacks'],
  operationId: 'getStackDrift',
  summary: "The stack's last drift check",
  request: { params },
  responses: {
    200: json(DriftView, 'Its drift state (`unknown` when never checked).'),
    ...errors(404),
  },
});

export const listStackPlans = createRoute({
  method: 'get',
  path: '/{id}/plans',
  tags: ['stacks'],
  operationId: 'listStackPlans',
  summary: "The stack's saved plans, newest first",
  request: {
    params,
    query: z.object({
      limit: intQuery(1, 200, 'At most this many (default 20).', 20),
      kind: PlanKind.optional(),
      pullRequest: intQuery(1, 2 ** 31 - 1, "Only this pull request's plans."),
    }),
  },
  responses: { 200: json(PlanList, 'The plans, without their files.'), ...errors(404) },
});

export const getPlan = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['stacks'],
  operationId: 'getPlan',
  summary: 'One plan artifact (format=file: the binary plan for `tofu apply`)',
  request: {
    params: IdParam('The plan id.'),
    query: z.object({
      format: z.enum(['json', 'file']).default('json').openapi({
        description:
          'json: the plan record; file: its plan file (x-norn-sha256 carries its digest).',
      }),
    }),
  },
  responses: {
    200: {
      description: 'The plan (json) or its plan file (file).',
      content: {
        'application/json': { schema: PlanView },
        'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) },
      },
      headers: z.object({
        'x-norn-sha256': z
          .string()
          .optional()
          .openapi({ description: 'format=file: the sha256 of the file.' }),
      }),
    },
    ...errors(404),
  },
});
