/**
 * Failures as the API server reports them: a v1 Status with the reason, code and details the
 * real apiserver uses (k8s.io/apimachinery/pkg/api/errors), carried by a KubeError.
 */
import type { ResourceType } from './resources.js';

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: StatusCause[];
  };
  code: number;
}

export class KubeError extends Error {
  constructor(readonly status: Status) {
    super(status.message);
    this.name = 'KubeError';
  }
}

export function failure(
  code: number,
  reason: string,
  message: string,
  details?: Status['details'],
): KubeError {
  const status: Status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details) status.details = details;
  return new KubeError(status);
}

/** `deployments.apps`, or `services` for the core group. */
export function qualified(rt: ResourceType): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

function resourceDetails(rt: ResourceType, name: string): Status['details'] {
  return rt.group ? { name, group: rt.group, kind: rt.plural } : { name, kind: rt.plural };
}

export function notFound(rt: ResourceType, name: string): KubeError {
  return failure(
    404,
    'NotFound',
    `${qualified(rt)} "${name}" not found`,
    resourceDetails(rt, name),
  );
}

export function alreadyExists(rt: ResourceType, name: string): KubeError {
  return failure(
    409,
    'AlreadyExists',
    `${qualified(rt)} "${name}" already exists`,
    resourceDetails(rt, name),
  );
}

export function conflict(rt: ResourceType, name: string): KubeError {
  return failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(rt)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    resourceDetails(rt, name),
  );
}

export function badRequest(message: string): KubeError {
  return failure(400, 'BadRequest', message);
}

/** 422: the object decoded but fails validation (field.ErrorList → StatusReasonInvalid). */
export function invalid(rt: ResourceType, name: string, causes: StatusCause[]): KubeError {
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  const list = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  const kind = rt.group ? `${rt.kind}.${rt.group}` : rt.kind;
  const details: Status['details'] = { name, kind: rt.kind, causes };
  if (rt.group) details.group = rt.group;
  return failure(422, 'Invalid', `${kind} "${name}" is invalid: ${list}`, details);
}

export function unauthorized(): KubeError {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

export function methodNotAllowed(): KubeError {
  return failure(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
  );
}

export function unsupportedMediaType(accepted: string[]): KubeError {
  return failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );
}

export function pathNotFound(): KubeError {
  return failure(404, 'NotFound', 'the server could not find the requested resource');
}

export function gone(message: string): KubeError {
  return failure(410, 'Expired', message);
}

export function success(rt: ResourceType, name: string, uid: string): Status {
  const details: Status['details'] = { name, kind: rt.plural, uid };
  if (rt.group) details.group = rt.group;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details, code: 200 };
}

export function preconditionFailed(rt: ResourceType, name: string, message: string): KubeError {
  return failure(409, 'Conflict', `Precondition failed: ${message}`, resourceDetails(rt, name));
}
