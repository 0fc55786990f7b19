/**
 * The resource types the fake serves, and the discovery documents (/api, /apis, /api/v1, ...)
 * derived from them, shaped as kubectl reads them (legacy, non-aggregated discovery).
 */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  /** The @kubernetes/client-node model class whose attributeTypeMap lists the known fields. */
  model: string;
  /** Whether metadata.generation is kept (bumped on every spec change). */
  generation: boolean;
  subresources: { name: string; kind: string; verbs: string[] }[];
}

const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const resourceTypes: ResourceType[] = [
  {
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    model: 'V1Deployment',
    generation: true,
    subresources: [
      { name: 'scale', kind: 'Scale', verbs: ['get', 'patch', 'update'] },
      { name: 'status', kind: 'Deployment', verbs: ['get'] },
    ],
  },
  {
    group: 'batch',
    version: 'v1',
    plural: 'cronjobs',
    singular: 'cronjob',
    kind: 'CronJob',
    namespaced: true,
    shortNames: ['cj'],
    model: 'V1CronJob',
    generation: true,
    subresources: [],
  },
  {
    group: '',
    version: 'v1',
    plural: 'services',
    singular: 'service',
    kind: 'Service',
    namespaced: true,
    shortNames: ['svc'],
    model: 'V1Service',
    generation: false,
    subresources: [],
  },
  {
    group: '',
    version: 'v1',
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    model: 'V1ConfigMap',
    generation: false,
    subresources: [],
  },
  {
    group: '',
    version: 'v1',
    plural: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    shortNames: [],
    model: 'V1Secret',
    generation: false,
    subresources: [],
  },
  {
    group: '',
    version: 'v1',
    plural: 'persistentvolumeclaims',
    singular: 'persistentvolumeclaim',
    kind: 'PersistentVolumeClaim',
    namespaced: true,
    shortNames: ['pvc'],
    model: 'V1PersistentVolumeClaim',
    generation: false,
    subresources: [],
  },
  {
    group: '',
    version: 'v1',
    plural: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    model: 'V1Pod',
    generation: false,
    subresources: [{ name: 'log', kind: 'Pod', verbs: ['get'] }],
  },
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    model: 'V1Namespace',
    generation: false,
    subresources: [],
  },
];

export function apiVersionOf(rt: ResourceType): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

export function findType(group: string, version: string, plural: string): ResourceType | undefined {
  return resourceTypes.find(
    (rt) => rt.group === group && rt.version === version && rt.plural === plural,
  );
}

export function typeOfKind(apiVersion: string, kind: string): ResourceType | undefined {
  return resourceTypes.find((rt) => apiVersionOf(rt) === apiVersion && rt.kind === kind);
}

export function versionInfo(): Record<string, string> {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.4',
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-04-22T00:00:00Z',
    goVersion: 'go1.23.6',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): unknown {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groups(): string[] {
  return [...new Set(resourceTypes.filter((rt) => rt.group).map((rt) => rt.group))];
}

export function apiGroupList(): unknown {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups().map((name) => ({
      name,
      versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
      preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
    })),
  };
}

export function apiGroup(name: string): unknown | undefined {
  if (!groups().includes(name)) return undefined;
  const v = { groupVersion: `${name}/v1`, version: 'v1' };
  return { kind: 'APIGroup', apiVersion: 'v1', name, versions: [v], preferredVersion: v };
}

export function apiResourceList(group: string, version: string): unknown | undefined {
  const types = resourceTypes.filter((rt) => rt.group === group && rt.version === version);
  if (types.length === 0) return undefined;
  const resources = types.flatMap((rt) => [
    {
      name: rt.plural,
      singularName: rt.singular,
      namespaced: rt.namespaced,
      kind: rt.kind,
      verbs,
      ...(rt.shortNames.length > 0 ? { shortNames: rt.shortNames } : {}),
      storageVersionHash: Buffer.from(rt.kind).toString('base64').slice(0, 11),
    },
    ...rt.subresources.map((s) => ({
      name: `${rt.plural}/${s.name}`,
      singularName: '',
      namespaced: rt.namespaced,
      ...(s.kind === 'Scale' ? { group: 'autoscaling', version: 'v1' } : {}),
      kind: s.kind,
      verbs: s.verbs,
    })),
  ]);
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}
