/**
 * What the API server refuses, in the order it refuses it:
 * 1. decoding: a field of the wrong JSON type (400 "cannot be handled as a Deployment: json:
 *    cannot unmarshal ..."), and, under fieldValidation=Strict, a field the type does not have
 *    (400 "strict decoding error: unknown field \"spec.foo\""). Unknown fields are found by walking
 *    the object along @kubernetes/client-node's generated attributeTypeMaps; types are checked by
 *    kubernetes-models' JSON schemas;
 * 2. validation (422 Invalid, one cause per field): kubernetes-models' remaining schema errors
 *    (required, enum, format) plus the apiserver's own rules that no schema carries (a container
 *    needs an image, the selector must match the template's labels, names are DNS labels, ...).
 */
import * as k8s from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1';
import { CronJob } from 'kubernetes-models/batch/v1';
import {
  ConfigMap,
  Namespace,
  PersistentVolumeClaim,
  Pod,
  Secret,
  Service,
} from 'kubernetes-models/v1';
import type { ResourceType } from './resources.js';
import { badRequest, invalid, type KubeError, type StatusCause } from './status.js';

type Obj = Record<string, unknown>;

interface Attribute {
  baseName: string;
  type: string;
}

const models = k8s as unknown as Record<
  string,
  { getAttributeTypeMap?: () => Attribute[] } | undefined
>;

function attributesOf(type: string): Attribute[] | undefined {
  return models[type]?.getAttributeTypeMap?.();
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Paths of fields the model does not have, as the apiserver prints them: `spec.containers[0].foo`. */
export function unknownFields(value: unknown, type: string, path = ''): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return [];
    return value.flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`));
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (!isObj(value)) return [];
    return Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}[${k}]`));
  }
  const attrs = attributesOf(type);
  if (!attrs || !isObj(value)) return [];
  const known = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const at = path ? `${path}.${k}` : k;
    const t = known.get(k);
    return t === undefined ? [at] : unknownFields(v, t, at);
  });
}

/** Drops the unknown fields (fieldValidation Ignore/Warn: the decoder drops them silently). */
export function pruneUnknown(value: unknown, type: string): unknown {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.map((v) => pruneUnknown(v, array[1]!)) : value;
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (!isObj(value)) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, pruneUnknown(v, map[1]!)]));
  }
  const attrs = attributesOf(type);
  if (!attrs || !isObj(value)) return value;
  const known = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.fromEntries(
    Object.entries(value).flatMap(([k, v]) => {
      const t = known.get(k);
      return t === undefined ? [] : [[k, pruneUnknown(v, t)]];
    }),
  );
}

interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

type ModelClass = new (data: Obj) => { validate(): void };

const schemaModels: Record<string, ModelClass> = {
  Deployment: Deployment as unknown as ModelClass,
  CronJob: CronJob as unknown as ModelClass,
  Service: Service as unknown as ModelClass,
  ConfigMap: ConfigMap as unknown as ModelClass,
  Secret: Secret as unknown as ModelClass,
  PersistentVolumeClaim: PersistentVolumeClaim as unknown as ModelClass,
  Pod: Pod as unknown as ModelClass,
  Namespace: Namespace as unknown as ModelClass,
};

function schemaErrors(kind: string, obj: Obj): SchemaError[] {
  const Model = schemaModels[kind];
  if (!Model) return [];
  try {
    new Model(structuredClone(obj)).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: SchemaError[] }).errors;
    if (!errors) throw err;
    return errors;
  }
}

function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}

function valueAt(obj: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .reduce<unknown>(
      (cur, seg) => (isObj(cur) || Array.isArray(cur) ? (cur as Obj)[seg] : undefined),
      obj,
    );
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const configKey = /^[-._a-zA-Z0-9]+$/;

const required = (field: string, detail?: string): StatusCause => ({
  reason: 'FieldValueRequired',
  message: detail ? `Required value: ${detail}` : 'Required value',
  field,
});
const badValue = (field: string, value: unknown, detail: string): StatusCause => ({
  reason: 'FieldValueInvalid',
  message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
  field,
});
const unsupported = (field: string, value: unknown, allowed: string[]): StatusCause => ({
  reason: 'FieldValueNotSupported',
  message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`,
  field,
});

function checkName(rt: ResourceType, meta: Obj, causes: StatusCause[]): void {
  const name = meta.name;
  if (typeof name !== 'string' || name === '') {
    causes.push(required('metadata.name', 'name or generateName is required'));
    return;
  }
  if (rt.kind === 'Service') {
    if (!dns1035Label.test(name) || name.length > 63)
      causes.push(
        badValue(
          'metadata.name',
          name,
          "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
      );
  } else if (rt.kind === 'Namespace') {
    if (!dns1123Label.test(name) || name.length > 63)
      causes.push(
        badValue(
          'metadata.name',
          name,
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
      );
  } else if (!dns1123Subdomain.test(name) || name.length > 253) {
    causes.push(
      badValue(
        'metadata.name',
        name,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      ),
    );
  }
  checkLabels(meta.labels, 'metadata.labels', causes);
}

function checkLabels(labels: unknown, field: string, causes: StatusCause[]): void {
  if (!isObj(labels)) return;
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v === 'string' && (!labelValue.test(v) || v.length > 63))
      causes.push(
        badValue(
          `${field}`,
          v,
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
      );
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k))
      causes.push(
        badValue(
          `${field}`,
          k,
          "name part must consist of alphanumeric characters, '-', '_' or '.'",
        ),
      );
  }
}

function checkPort(field: string, port: unknown, causes: StatusCause[]): void {
  if (typeof port === 'number' && (port < 1 || port > 65535 || !Number.isInteger(port)))
    causes.push(badValue(field, port, 'must be between 1 and 65535, inclusive'));
}

/** IANA_SVC_NAME, what a named port must be. */
function checkPortName(field: string, name: string, causes: StatusCause[]): void {
  if (name.length > 15) causes.push(badValue(field, name, 'must be no more than 15 characters'));
  else if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) || name.includes('--'))
    causes.push(
      badValue(
        field,
        name,
        'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      ),
    );
  else if (!/[a-z]/.test(name))
    causes.push(badValue(field, name, 'must contain at least one letter (a-z)'));
}

/** A pod's volume names are DNS labels, each once. */
function checkVolumeName(
  name: unknown,
  field: string,
  seen: Set<unknown>,
  causes: StatusCause[],
): void {
  if (typeof name !== 'string' || name === '') causes.push(required(field));
  else if (!dns1123Label.test(name) || name.length > 63)
    causes.push(
      badValue(
        field,
        name,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
      ),
    );
  else if (seen.has(name))
    causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${name}"`, field });
}

const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'];

function checkProbe(probe: unknown, field: string, kind: string, causes: StatusCause[]): void {
  if (!isObj(probe)) return;
  const given = handlers.filter((h) => probe[h] !== undefined);
  if (given.length === 0) causes.push(required(field, 'must specify a handler type'));
  if (given.length > 1)
    causes.push({
      reason: 'FieldValueForbidden',
      message: 'Forbidden: may not specify more than 1 handler type',
      field: `${field}.${given[1]}`,
    });
  for (const h of ['httpGet', 'tcpSocket']) {
    const handler = probe[h];
    if (!isObj(handler)) continue;
    if (typeof handler.port === 'number') checkPort(`${field}.${h}.port`, handler.port, causes);
    if (typeof handler.port === 'string') checkPortName(`${field}.${h}.port`, handler.port, causes);
  }
  if (
    kind !== 'readinessProbe' &&
    probe.successThreshold !== undefined &&
    probe.successThreshold !== 1
  )
    causes.push(badValue(`${field}.successThreshold`, probe.successThreshold, 'must be 1'));
}

const suffixes: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

function quantity(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  const m = typeof v === 'string' ? /^([+-]?[0-9.]+)(e[+-]?\d+)?([a-zA-Z]*)$/.exec(v) : null;
  const scale = m ? suffixes[m[3] ?? ''] : undefined;
  return m && scale !== undefined ? Number(`${m[1]}${m[2] ?? ''}`) * scale : undefined;
}

function checkContainerExtras(c: Obj, at: string, causes: StatusCause[]): void {
  for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe'])
    checkProbe(c[kind], `${at}.${kind}`, kind, causes);
  (Array.isArray(c.env) ? c.env : []).forEach((e, i) => {
    if (!isObj(e)) return;
    const name = e.name;
    if (typeof name !== 'string' || name === '') causes.push(required(`${at}.env[${i}].name`));
    else if (!/^[ -<>-~]+$/.test(name))
      causes.push(
        badValue(
          `${at}.env[${i}].name`,
          name,
          "a valid environment variable name must consist only of printable ASCII characters other than '='",
        ),
      );
    if (e.value !== undefined && e.valueFrom !== undefined)
      causes.push({
        reason: 'FieldValueInvalid',
        message: 'Invalid value: "": may not be specified when `value` is not empty',
        field: `${at}.env[${i}].valueFrom`,
      });
  });
  const resources = isObj(c.resources) ? c.resources : {};
  const limits = isObj(resources.limits) ? resources.limits : {};
  const requests = isObj(resources.requests) ? resources.requests : {};
  for (const [name, req] of Object.entries(requests)) {
    const limit = quantity(limits[name]);
    const asked = quantity(req);
    if (limit !== undefined && asked !== undefined && asked > limit)
      causes.push(
        badValue(
          `${at}.resources.requests`,
          String(req),
          `must be less than or equal to ${name} limit of ${String(limits[name])}`,
        ),
      );
  }
}

function checkPodSpec(
  spec: unknown,
  path: string,
  causes: StatusCause[],
  restartPolicies: string[],
): void {
  if (!isObj(spec)) {
    causes.push(required(`${path}.containers`));
    return;
  }
  const volumes = new Set<unknown>();
  (Array.isArray(spec.volumes) ? spec.volumes : []).forEach((v, i) => {
    if (!isObj(v)) return;
    checkVolumeName(v.name, `${path}.volumes[${i}].name`, volumes, causes);
    volumes.add(v.name);
    const hostPath = isObj(v.hostPath) ? v.hostPath.path : undefined;
    if (typeof hostPath === 'string' && hostPath.split('/').includes('..'))
      causes.push(
        badValue(`${path}.volumes[${i}].hostPath.path`, hostPath, "must not contain '..'"),
      );
    const sources = Object.keys(v).filter((k) => k !== 'name');
    if (sources.length === 0)
      causes.push(required(`${path}.volumes[${i}]`, 'must specify a volume type'));
    if (sources.length > 1)
      causes.push({
        reason: 'FieldValueForbidden',
        message: 'Forbidden: may not specify more than 1 volume type',
        field: `${path}.volumes[${i}].${sources[1]}`,
      });
  });
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  if (containers.length === 0) causes.push(required(`${path}.containers`));
  const seen = new Set<unknown>();
  const lists: [string, unknown[]][] = [
    ['containers', containers],
    ['initContainers', Array.isArray(spec.initContainers) ? spec.initContainers : []],
  ];
  for (const [list, items] of lists) {
    items.forEach((c, i) => {
      if (!isObj(c)) return;
      const at = `${path}.${list}[${i}]`;
      if (typeof c.name !== 'string' || c.name === '') causes.push(required(`${at}.name`));
      else if (!dns1123Label.test(c.name))
        causes.push(
          badValue(
            `${at}.name`,
            c.name,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
          ),
        );
      else if (seen.has(c.name))
        causes.push({
          reason: 'FieldValueDuplicate',
          message: `Duplicate value: "${c.name}"`,
          field: `${at}.name`,
        });
      seen.add(c.name);
      if (typeof c.image !== 'string' || c.image.trim() === '')
        causes.push(required(`${at}.image`));
      (Array.isArray(c.ports) ? c.ports : []).forEach((p, j) => {
        if (!isObj(p)) return;
        checkPort(`${at}.ports[${j}].containerPort`, p.containerPort, causes);
        if (typeof p.name === 'string') checkPortName(`${at}.ports[${j}].name`, p.name, causes);
      });
      checkContainerExtras(c, at, causes);
      const mounted = new Set<unknown>();
      (Array.isArray(c.volumeMounts) ? c.volumeMounts : []).forEach((m, j) => {
        if (!isObj(m)) return;
        if (!volumes.has(m.name))
          causes.push({
            reason: 'FieldValueNotFound',
            message: `Not found: "${String(m.name)}"`,
            field: `${at}.volumeMounts[${j}].name`,
          });
        if (mounted.has(m.mountPath))
          causes.push(
            badValue(`${at}.volumeMounts[${j}].mountPath`, m.mountPath, 'must be unique'),
          );
        mounted.add(m.mountPath);
      });
    });
  }
  const restartPolicy = spec.restartPolicy ?? 'Always';
  if (!restartPolicies.includes(restartPolicy as string))
    causes.push(unsupported(`${path}.restartPolicy`, restartPolicy, restartPolicies));
}

function matches(selector: Obj, labels: Obj): boolean {
  const matchLabels = isObj(selector.matchLabels) ? selector.matchLabels : {};
  return Object.entries(matchLabels).every(([k, v]) => labels[k] === v);
}

function kindRules(rt: ResourceType, obj: Obj, causes: StatusCause[]): void {
  const spec = isObj(obj.spec) ? obj.spec : undefined;
  switch (rt.kind) {
    case 'Deployment': {
      if (!spec || !isObj(spec.selector)) {
        causes.push(required('spec.selector'));
      } else {
        const ml = spec.selector.matchLabels;
        const me = spec.selector.matchExpressions;
        if ((!isObj(ml) || Object.keys(ml).length === 0) && (!Array.isArray(me) || me.length === 0))
          causes.push(
            badValue('spec.selector', spec.selector, 'empty selector is invalid for deployment'),
          );
        const template = isObj(spec.template) ? spec.template : {};
        const labels =
          isObj(template.metadata) && isObj(template.metadata.labels)
            ? template.metadata.labels
            : {};
        if (!matches(spec.selector, labels))
          causes.push(
            badValue(
              'spec.template.metadata.labels',
              labels,
              '`selector` does not match template `labels`',
            ),
          );
      }
      if (typeof spec?.replicas === 'number' && spec.replicas < 0)
        causes.push(badValue('spec.replicas', spec.replicas, 'must be greater than or equal to 0'));
      const template = spec && isObj(spec.template) ? spec.template : undefined;
      if (template && isObj(template.metadata))
        checkLabels(template.metadata.labels, 'spec.template.metadata.labels', causes);
      checkPodSpec(template?.spec, 'spec.template.spec', causes, ['Always']);
      const strategy = spec && isObj(spec.strategy) ? spec.strategy : undefined;
      if (strategy?.type === 'Recreate' && strategy.rollingUpdate !== undefined)
        causes.push({
          reason: 'FieldValueForbidden',
          message: "Forbidden: may not be specified when strategy `type` is 'Recreate'",
          field: 'spec.strategy.rollingUpdate',
        });
      const ru = strategy && isObj(strategy.rollingUpdate) ? strategy.rollingUpdate : undefined;
      if (ru && isZero(ru.maxSurge) && isZero(ru.maxUnavailable))
        causes.push(
          badValue(
            'spec.strategy.rollingUpdate.maxUnavailable',
            ru.maxUnavailable,
            'may not be 0 when `maxSurge` is 0',
          ),
        );
      return;
    }
    case 'CronJob': {
      if (!spec || typeof spec.schedule !== 'string' || spec.schedule === '')
        causes.push(required('spec.schedule'));
      else if (
        !/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(spec.schedule) &&
        spec.schedule.trim().split(/\s+/).length !== 5
      )
        causes.push(
          badValue(
            'spec.schedule',
            spec.schedule,
            `Expected exactly 5 fields, found ${spec.schedule.trim().split(/\s+/).length}: ${spec.schedule}`,
          ),
        );
      const jt = spec && isObj(spec.jobTemplate) ? spec.jobTemplate : {};
      const jspec = isObj(jt.spec) ? jt.spec : {};
      const tpl = isObj(jspec.template) ? jspec.template : {};
      checkPodSpec(tpl.spec, 'spec.jobTemplate.spec.template.spec', causes, ['OnFailure', 'Never']);
      if (
        spec?.concurrencyPolicy !== undefined &&
        !['Allow', 'Forbid', 'Replace'].includes(spec.concurrencyPolicy as string)
      )
        causes.push(
          unsupported('spec.concurrencyPolicy', spec.concurrencyPolicy, [
            'Allow',
            'Forbid',
            'Replace',
          ]),
        );
      return;
    }
    case 'Service': {
      const type = spec?.type ?? 'ClusterIP';
      const ports = Array.isArray(spec?.ports) ? spec.ports : [];
      if (type !== 'ExternalName' && spec?.clusterIP !== 'None' && ports.length === 0)
        causes.push(required('spec.ports'));
      ports.forEach((p, i) => {
        if (!isObj(p)) return;
        if (p.port === undefined) causes.push(required(`spec.ports[${i}].port`));
        checkPort(`spec.ports[${i}].port`, p.port, causes);
        if (typeof p.targetPort === 'number')
          checkPort(`spec.ports[${i}].targetPort`, p.targetPort, causes);
        if (ports.length > 1 && !p.name) causes.push(required(`spec.ports[${i}].name`));
      });
      return;
    }
    case 'Pod':
      checkPodSpec(spec, 'spec', causes, ['Always', 'OnFailure', 'Never']);
      return;
    case 'PersistentVolumeClaim': {
      const modes = Array.isArray(spec?.accessModes) ? spec.accessModes : [];
      if (modes.length === 0)
        causes.push(required('spec.accessModes', 'at least 1 access mode is required'));
      const resources = spec && isObj(spec.resources) ? spec.resources : {};
      const requests = isObj(resources.requests) ? resources.requests : {};
      if (requests.storage === undefined) causes.push(required('spec.resources[storage]'));
      return;
    }
    case 'ConfigMap':
    case 'Secret':
      for (const field of ['data', 'binaryData', 'stringData']) {
        const data = obj[field];
        if (!isObj(data)) continue;
        for (const k of Object.keys(data))
          if (!configKey.test(k))
            causes.push(
              badValue(
                `${field}[${k}]`,
                k,
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
              ),
            );
      }
      return;
    default:
      return;
  }
}

function isZero(v: unknown): boolean {
  return v === 0 || v === '0%';
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface Decoded {
  object: Obj;
  warnings: string[];
}

/**
 * Decodes a request body as the apiserver would: type errors and (Strict) unknown fields are 400,
 * Warn/Ignore drop unknown fields (Warn reports them as warnings).
 */
export function decode(rt: ResourceType, body: Obj, fieldValidation: FieldValidation): Decoded {
  const prefix = `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}`;
  const errors = schemaErrors(rt.kind, body);
  const quantity = errors.find((e) => e.keyword === 'format' && e.params.format === 'quantity');
  if (quantity)
    throw badRequest(
      `${prefix}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
    );
  // A oneOf (int-or-string) reports a type error per branch: the field is of neither type.
  const oneOf = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const first = errors.find((e) => e.keyword === 'type');
  if (first) {
    const expected = oneOf.has(first.instancePath) ? 'intstr' : (first.params.type as string);
    const got = jsonType(valueAt(body, first.instancePath));
    const goType =
      { integer: 'int32', object: 'map', intstr: 'intstr.IntOrString' }[expected] ?? expected;
    throw badRequest(
      `${prefix}: json: cannot unmarshal ${got} into Go struct field ${rt.kind}.${fieldPath(first.instancePath)} of type ${goType}`,
    );
  }
  if (rt.kind === 'Secret' && isObj(body.data)) {
    for (const v of Object.values(body.data)) {
      if (typeof v === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
        throw badRequest(
          `${prefix}: illegal base64 data at input byte ${Math.max(0, v.search(/[^A-Za-z0-9+/=]/))}`,
        );
    }
  }
  const unknown = unknownFields(body, rt.model);
  if (unknown.length === 0 || fieldValidation === 'Ignore')
    return { object: pruneUnknown(body, rt.model) as Obj, warnings: [] };
  if (fieldValidation === 'Warn')
    return {
      object: pruneUnknown(body, rt.model) as Obj,
      warnings: unknown.map((f) => `unknown field "${f}"`),
    };
  throw badRequest(
    `${prefix}: strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`,
  );
}

/** The 422 checks, on the object as it would be stored (after defaulting). */
export function validateObject(rt: ResourceType, obj: Obj): KubeError | undefined {
  const causes: StatusCause[] = [];
  for (const e of schemaErrors(rt.kind, obj)) {
    const field = fieldPath(e.instancePath);
    if (e.keyword === 'required') {
      const missing = String(e.params.missingProperty);
      causes.push(required(field ? `${field}.${missing}` : missing));
    } else if (e.keyword === 'enum') {
      causes.push(
        unsupported(
          field,
          valueAt(obj, e.instancePath),
          (e.params.allowedValues as string[]) ?? [],
        ),
      );
    } else if (e.keyword !== 'type') {
      causes.push(badValue(field, valueAt(obj, e.instancePath), e.message ?? e.keyword));
    }
  }
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  checkName(rt, meta, causes);
  kindRules(rt, obj, causes);
  const unique = [...new Map(causes.map((c) => [`${c.field}|${c.message}`, c])).values()];
  if (unique.length === 0) return undefined;
  return invalid(rt, typeof meta.name === 'string' ? meta.name : '', unique);
}

/** JSON with keys sorted: the same object whatever order a client wrote its fields in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (!isObj(v)) return JSON.stringify(v) ?? 'null';
  const keys = Object.keys(v)
    .filter((k) => v[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
}

/** A claim's spec without what an update may change (a bound claim may be expanded). */
function claimSpec(spec: Obj): string {
  const { resources, volumeAttributesClassName: _, ...rest } = spec;
  const { requests: __, ...other } = isObj(resources) ? resources : {};
  return canonical({ ...rest, resources: other });
}

/** Fields an update may not change. */
export function validateUpdate(rt: ResourceType, old: Obj, next: Obj): KubeError | undefined {
  const causes: StatusCause[] = [];
  const o = (old.spec ?? {}) as Obj;
  const n = (next.spec ?? {}) as Obj;
  if (rt.kind === 'Deployment' && JSON.stringify(o.selector) !== JSON.stringify(n.selector))
    causes.push(badValue('spec.selector', n.selector, 'field is immutable'));
  if (rt.kind === 'Service' && o.clusterIP !== undefined && n.clusterIP !== o.clusterIP)
    causes.push(badValue('spec.clusterIP', n.clusterIP, 'field is immutable'));
  if (
    (rt.kind === 'ConfigMap' || rt.kind === 'Secret') &&
    old.immutable === true &&
    JSON.stringify(old.data) !== JSON.stringify(next.data)
  )
    causes.push({
      reason: 'FieldValueForbidden',
      message: 'Forbidden: field is immutable when `immutable` is set',
      field: 'data',
    });
  if (rt.kind === 'PersistentVolumeClaim' && claimSpec(o) !== claimSpec(n))
    causes.push({
      reason: 'FieldValueForbidden',
      message:
        'Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims',
      field: 'spec',
    });
  if (causes.length === 0) return undefined;
  return invalid(rt, String((next.metadata as Obj | undefined)?.name ?? ''), causes);
}
