/**
 * Routes under /api/runs and, in their earlier shapes, /api/deployments and /api/sagas (paths
 * relative to each); /api/scopes.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { errors, IdParam, json, type Tag } from './http.js';
import {
  DeploymentCancelled,
  DeploymentDetail,
  DeploymentEvents,
  DeploymentStepLog,
  RunCancelled,
  RunDetail,
  RunEvents,
  RunResumed,
  RunStepLog,
  SagaEvents,
  ScopeView,
} from './schemas.js';

interface Shapes<D, E, L, C> {
  detail: D;
  events: E;
  log: L;
  cancelled: C;
}

/** The five run operations under one name: `run` (/api/runs) or `deployment` (/api/deployments). */
function runOperations<
  D extends z.ZodType,
  E extends z.ZodType,
  L extends z.ZodType,
  C extends z.ZodType,
>(noun: 'run' | 'deployment', tag: Tag, shapes: Shapes<D, E, L, C>) {
  const Noun = noun === 'run' ? 'Run' : 'Deployment';
  const params = IdParam(`The ${noun} (its id is also its saga id).`);
  const deprecated = noun === 'deployment';
  return {
    get: createRoute({
      method: 'get',
      path: '/{id}',
      tags: [tag],
      operationId: `get${Noun}`,
      summary: `A ${noun} with its steps and its life-cycle hooks`,
      deprecated,
      request: { params },
      responses: { 200: json(shapes.detail, `The ${noun}.`), ...errors(404) },
    }),
    events: createRoute({
      method: 'get',
      path: '/{id}/events',
      tags: [tag],
      operationId: `list${Noun}Events`,
      summary: `A ${noun}'s saga events, oldest first`,
      deprecated,
      request: { params },
      responses: { 200: json(shapes.events, 'Its events.'), ...errors(404) },
    }),
    log: createRoute({
      method: 'get',
      path: '/{id}/steps/{step}/log',
      tags: [tag],
      operationId: `get${Noun}StepLog`,
      summary: 'What a step wrote while it ran (kept a day after success, a week after failure)',
      deprecated,
      request: {
        params: params.extend({
          step: z.string().openapi({
            param: { name: 'step', in: 'path' },
            description: 'A step of its pipeline.',
          }),
        }),
      },
      responses: { 200: json(shapes.log, "The step's log lines."), ...errors(404) },
    }),
    cancel: createRoute({
      method: 'post',
      path: '/{id}/cancel',
      tags: [tag],
      operationId: `cancel${Noun}`,
      summary: `Cancel a ${noun} (a queued one ends at once, a running one's step is stopped)`,
      deprecated,
      request: { params },
      responses: { 202: json(shapes.cancelled, 'Where the cancel got to.'), ...errors(404) },
    }),
    resume: createRoute({
      method: 'post',
      path: '/{id}/resume',
      tags: [tag],
      operationId: `resume${Noun}`,
      summary: `Resume a failed or cancelled ${noun}: a new run skipping the steps it completed`,
      deprecated,
      request: { params },
      responses: { 202: json(RunResumed, 'The new run.'), ...errors(404, 409, 422) },
    }),
  };
}

export const runOps = runOperations('run', 'runs', {
  detail: RunDetail,
  events: RunEvents,
  log: RunStepLog,
  cancelled: RunCancelled,
});

export const deploymentOps = runOperations('deployment', 'deployments', {
  detail: DeploymentDetail,
  events: DeploymentEvents,
  log: DeploymentStepLog,
  cancelled: DeploymentCancelled,
});

export const listSagaEvents = createRoute({
  method: 'get',
  path: '/{id}/events',
  tags: ['deployments'],
  operationId: 'listSagaEvents',
  summary: "A run's events under the route's earliest name",
  deprecated: true,
  request: { params: IdParam('The saga (= run) id.') },
  responses: { 200: json(SagaEvents, 'Its events.'), ...errors(404) },
});

export const getScope = createRoute({
  method: 'get',
  path: '/{scope}',
  tags: ['scopes'],
  operationId: 'getScope',
  summary: 'Who holds a scope (run, worker, lease expiry) and what waits there',
  request: {
    params: z.object({
      scope: z.string().openapi({
        param: { name: 'scope', in: 'path' },
        description: '`<app|stack|review|drift>:<key>`, URL-encoded ("#" as %23).',
        example: 'app:web',
      }),
    }),
  },
  responses: { 200: json(ScopeView, 'The scope (no holder, none waiting: free).'), ...errors() },
});
