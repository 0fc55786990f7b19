/**
 * Just enough OpenAPI for kubectl: /openapi/v3 lists a document per group-version, and each
 * document has the paths of its resources, with the x-kubernetes-group-version-kind extension and
 * the query parameters (fieldValidation, dryRun, fieldManager) the real server declares. kubectl
 * reads the PATCH operation's parameters to decide that the server validates fields itself
 * (it then sends fieldValidation=Strict and skips its client-side schema check). Schemas are not
 * served: kubectl then computes apply patches from its built-in types, as it does for every
 * built-in kind. /openapi/v2 is not served (404), as on a server that dropped it.
 */
import { createHash } from 'node:crypto';
import { resourceTypes, type ResourceType } from './resources.js';

function gvPath(rt: ResourceType): string {
  return rt.group ? `apis/${rt.group}/${rt.version}` : `api/${rt.version}`;
}

function groupVersions(): string[] {
  return [...new Set(resourceTypes.map(gvPath))];
}

const query = (name: string): unknown => ({
  name,
  in: 'query',
  schema: { type: 'string', uniqueItems: true },
});
const writeParams = ['dryRun', 'fieldManager', 'fieldValidation'].map(query);
const ok = { '200': { description: 'OK' } };

function operations(rt: ResourceType): Record<string, unknown> {
  const gvk = {
    'x-kubernetes-group-version-kind': { group: rt.group, version: rt.version, kind: rt.kind },
  };
  const base = rt.namespaced
    ? `/${gvPath(rt)}/namespaces/{namespace}/${rt.plural}`
    : `/${gvPath(rt)}/${rt.plural}`;
  const id = (verb: string): string => `${verb}${rt.kind}`;
  return {
    [base]: {
      get: {
        operationId: id('list'),
        'x-kubernetes-action': 'list',
        ...gvk,
        parameters: ['labelSelector', 'fieldSelector', 'watch', 'resourceVersion'].map(query),
        responses: ok,
      },
      post: {
        operationId: id('create'),
        'x-kubernetes-action': 'post',
        ...gvk,
        parameters: writeParams,
        responses: ok,
      },
      delete: {
        operationId: id('deleteCollection'),
        'x-kubernetes-action': 'deletecollection',
        ...gvk,
        responses: ok,
      },
    },
    [`${base}/{name}`]: {
      get: { operationId: id('read'), 'x-kubernetes-action': 'get', ...gvk, responses: ok },
      put: {
        operationId: id('replace'),
        'x-kubernetes-action': 'put',
        ...gvk,
        parameters: writeParams,
        responses: ok,
      },
      patch: {
        operationId: id('patch'),
        'x-kubernetes-action': 'patch',
        ...gvk,
        parameters: [...writeParams, query('force')],
        responses: ok,
      },
      delete: {
        operationId: id('delete'),
        'x-kubernetes-action': 'delete',
        ...gvk,
        parameters: [query('dryRun')],
        responses: ok,
      },
    },
  };
}

export function openApiV3Group(path: string): unknown | undefined {
  const types = resourceTypes.filter((rt) => gvPath(rt) === path);
  if (types.length === 0) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.4' },
    paths: Object.assign({}, ...types.map(operations)),
    components: { schemas: {} },
  };
}

export function openApiV3Index(): unknown {
  return {
    paths: Object.fromEntries(
      groupVersions().map((p) => {
        const hash = createHash('sha512')
          .update(JSON.stringify(openApiV3Group(p)))
          .digest('hex')
          .slice(0, 64)
          .toUpperCase();
        return [p, { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` }];
      }),
    ),
  };
}

export function openApiV2(): unknown {
  return undefined;
}
