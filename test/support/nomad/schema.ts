/**
 * Type-checks a JSON body against the `api` package's structs, the way Go's encoding/json decodes
 * it into `api.JobRegisterRequest`, and returns the decoded value with field names made canonical.
 *
 * What encoding/json does, and so what 'ignore' mode does: unknown fields are dropped silently;
 * field names match case-insensitively (`datacenters` sets `Datacenters`); `null` is accepted
 * for every field (it leaves a value field unset and a pointer, slice or map nil); a number with
 * a fraction, or a negative one for an unsigned field, is refused. Real Nomad answers a body that
 * fails to decode with HTTP 400 and the decoder's message.
 *
 * 'refuse' mode (the fake's default) also refuses an unknown field and a field spelled in another
 * case, so a typo in what norn sends fails a test instead of being dropped, as a real cluster
 * would drop it. JSON.parse cannot tell `1.0` from `1`, so an integer written with `.0` passes,
 * where Go would refuse it.
 */
import { consulStructs } from './schema-consul.js';
import { coreStructs } from './schema-structs.js';

import type { FieldType, UnknownFields } from './schema-types.js';

export type { FieldType, Primitive, UnknownFields } from './schema-types.js';

export const structs: Record<string, Record<string, FieldType>> = {
  ...coreStructs,
  ...consulStructs,
};

/**
 * Fields the api package no longer has but Nomad's own docs still send (the json-jobs example
 * carries `ConsulToken` and `VaultToken`, dropped from api.Job when workload identities replaced
 * them). Real Nomad ignores them like any unknown field; 'refuse' mode drops them too rather than
 * refuse the docs' example.
 */
const retired: Record<string, string[]> = { Job: ['ConsulToken', 'VaultToken'] };

const primitives = new Set(['string', 'int', 'uint', 'number', 'bool', 'duration', 'time', 'any']);
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export interface Decoded {
  /** The value with canonical field names, unknown fields dropped; meaningful only when `problems` is empty. */
  value: unknown;
  problems: string[];
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function keyPath(path: string, key: string): string {
  if (path === '') return key;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
    ? `${path}.${key}`
    : `${path}[${JSON.stringify(key)}]`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decodeAt(
  value: unknown,
  type: FieldType,
  path: string,
  mode: UnknownFields,
  problems: string[],
): unknown {
  if (value === null) return null;
  const wrong = (expected: string): unknown => {
    problems.push(`${path}: expected ${expected}, got ${jsonType(value)}`);
    return undefined;
  };
  if (typeof type === 'object') {
    if ('array' in type) {
      if (!Array.isArray(value)) return wrong('array');
      return value.map((item, i) => decodeAt(item, type.array, `${path}[${i}]`, mode, problems));
    }
    if (!isPlainObject(value)) return wrong('object');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = decodeAt(v, type.map, keyPath(path, k), mode, problems);
    }
    return out;
  }
  switch (type) {
    case 'any':
      return value;
    case 'string':
      return typeof value === 'string' ? value : wrong('string');
    case 'bool':
      return typeof value === 'boolean' ? value : wrong('boolean');
    case 'number':
      return typeof value === 'number' ? value : wrong('number');
    case 'int':
    case 'duration':
      return Number.isInteger(value)
        ? value
        : wrong(type === 'duration' ? 'integer nanoseconds' : 'integer');
    case 'uint':
      return Number.isInteger(value) && (value as number) >= 0 ? value : wrong('unsigned integer');
    case 'time':
      return typeof value === 'string' && rfc3339.test(value) ? value : wrong('RFC 3339 time');
  }
  const fields = structs[type];
  if (!fields || primitives.has(type)) throw new Error(`schema names unknown struct ${type}`);
  if (!isPlainObject(value)) return wrong(`object (${type})`);
  const byLower = new Map(Object.keys(fields).map((f) => [f.toLowerCase(), f]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const exact = k in fields ? k : undefined;
    const folded = exact ?? byLower.get(k.toLowerCase());
    if (!folded) {
      if (retired[type]?.includes(k)) continue;
      if (mode === 'refuse')
        problems.push(`${keyPath(path, k)}: unknown field (${type} has no ${k})`);
      continue;
    }
    if (!exact && mode === 'refuse') {
      problems.push(
        `${keyPath(path, k)}: field is spelled ${folded} (Nomad matches it case-insensitively)`,
      );
    }
    const decoded = decodeAt(v, fields[folded]!, keyPath(path, folded), mode, problems);
    if (decoded !== undefined) out[folded] = decoded;
  }
  return out;
}

/** Decodes `value` as the struct `type` (e.g. 'Job', 'JobRegisterRequest'), paths rooted at `root`. */
export function decodeStruct(
  value: unknown,
  type: string,
  opts: { unknownFields?: UnknownFields; root?: string } = {},
): Decoded {
  const problems: string[] = [];
  const decoded = decodeAt(
    value,
    type,
    opts.root ?? type,
    opts.unknownFields ?? 'refuse',
    problems,
  );
  return { value: decoded, problems };
}

/** The problems with a job's JSON (`Job.TaskGroups[0].Tasks[0].Resources.MemoryMB: expected integer, got string`). */
export function checkJob(value: unknown, opts: { unknownFields?: UnknownFields } = {}): string[] {
  return decodeStruct(value, 'Job', opts).problems;
}
