/**
 * The three patch types the apiserver takes: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386)
 * and strategic merge patch (lists merged by their patchMergeKey, with the $patch, $retainKeys,
 * $setElementOrder and $deleteFromPrimitiveList directives kubectl sends).
 */
import { failure, type KubeError } from './status.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function patchError(message: string): KubeError {
  return failure(422, 'Invalid', message);
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function unescape(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

interface Op {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function parent(
  doc: unknown,
  path: string,
  opName: string,
): { container: Obj | unknown[]; key: string } {
  const segs = path.split('/').slice(1).map(unescape);
  const key = segs.pop();
  if (key === undefined)
    throw patchError(
      `jsonpatch ${opName} operation does not apply: doc is missing path: "${path}"`,
    );
  let cur: unknown = doc;
  for (const s of segs) {
    cur = Array.isArray(cur) ? cur[Number(s)] : isObj(cur) ? cur[s] : undefined;
    if (cur === undefined)
      throw patchError(
        `jsonpatch ${opName} operation does not apply: doc is missing path: "${path}"`,
      );
  }
  if (!isObj(cur) && !Array.isArray(cur))
    throw patchError(
      `jsonpatch ${opName} operation does not apply: doc is missing path: "${path}"`,
    );
  return { container: cur, key };
}

function get(doc: unknown, path: string, opName: string): unknown {
  if (path === '') return doc;
  const { container, key } = parent(doc, path, opName);
  const v = Array.isArray(container) ? container[Number(key)] : container[key];
  if (v === undefined)
    throw patchError(`jsonpatch ${opName} operation does not apply: doc is missing key: ${path}`);
  return v;
}

function remove(doc: unknown, path: string, opName: string): unknown {
  const { container, key } = parent(doc, path, opName);
  if (Array.isArray(container)) {
    const i = Number(key);
    if (!(i >= 0 && i < container.length))
      throw patchError(`jsonpatch ${opName} operation does not apply: doc is missing key: ${path}`);
    return container.splice(i, 1)[0];
  }
  if (!(key in container))
    throw patchError(`jsonpatch ${opName} operation does not apply: doc is missing key: ${path}`);
  const v = container[key];
  delete container[key];
  return v;
}

function add(doc: unknown, path: string, value: unknown, replace: boolean): void {
  const opName = replace ? 'replace' : 'add';
  const { container, key } = parent(doc, path, opName);
  if (Array.isArray(container)) {
    const i = key === '-' ? container.length : Number(key);
    if (!(i >= 0 && i <= container.length) || (replace && i >= container.length))
      throw patchError(`jsonpatch ${opName} operation does not apply: doc is missing key: ${path}`);
    container.splice(i, replace ? 1 : 0, value);
    return;
  }
  if (replace && !(key in container))
    throw patchError(`jsonpatch replace operation does not apply: doc is missing key: ${path}`);
  container[key] = value;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops))
    throw patchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = structuredClone(target);
  for (const raw of ops as Op[]) {
    const value = structuredClone(raw.value);
    switch (raw.op) {
      case 'add':
        if (raw.path === '') doc = value;
        else add(doc, raw.path, value, false);
        break;
      case 'replace':
        if (raw.path === '') doc = value;
        else add(doc, raw.path, value, true);
        break;
      case 'remove':
        remove(doc, raw.path, 'remove');
        break;
      case 'move':
        add(doc, raw.path, remove(doc, raw.from ?? '', 'move'), false);
        break;
      case 'copy':
        add(doc, raw.path, structuredClone(get(doc, raw.from ?? '', 'copy')), false);
        break;
      case 'test':
        if (JSON.stringify(get(doc, raw.path, 'test')) !== JSON.stringify(raw.value))
          throw patchError(`testing value ${raw.path} failed: test failed`);
        break;
      default:
        throw patchError(`Unexpected kind: ${String(raw.op)}`);
    }
  }
  return doc;
}

/** patchMergeKey of the lists that have one (k8s.io/api types); other lists are replaced. */
function mergeKeyOf(field: string, items: unknown[]): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
    case 'readinessGates':
      return field === 'readinessGates' ? 'conditionType' : 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'volumeDevices':
      return 'devicePath';
    case 'conditions':
      return 'type';
    case 'hostAliases':
      return 'ip';
    case 'ownerReferences':
      return 'uid';
    case 'ports':
      return items.some((p) => isObj(p) && 'containerPort' in p) ? 'containerPort' : 'port';
    default:
      return undefined;
  }
}

/** Primitive lists with patchStrategy merge (a set). */
const primitiveSets = new Set(['finalizers']);

function mergeList(field: string, original: unknown, patch: unknown[]): unknown[] {
  const orig = Array.isArray(original) ? original : [];
  if (patch.some((p) => isObj(p) && p.$patch === 'replace'))
    return patch.filter((p) => !(isObj(p) && p.$patch === 'replace')).map((p) => strip(p));
  if (primitiveSets.has(field)) return [...new Set([...orig, ...patch])];
  const key = mergeKeyOf(field, [...orig, ...patch]);
  if (!key) return patch.map((p) => strip(p));
  const out = orig.map((o) => structuredClone(o));
  for (const p of patch) {
    if (!isObj(p)) continue;
    const i = out.findIndex((o) => isObj(o) && o[key] === p[key]);
    if (p.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = strategicMerge(out[i], p);
    else out.push(strip(p));
  }
  return out;
}

function strip(v: unknown): unknown {
  return strategicMerge(undefined, v);
}

function reorder(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const pos = (v: unknown): number => {
    const i = order.findIndex((o) => (key && isObj(o) && isObj(v) ? o[key] === v[key] : o === v));
    return i < 0 ? order.length : i;
  };
  return [...list].sort((a, b) => pos(a) - pos(b));
}

export function strategicMerge(original: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const rest = { ...patch };
    delete rest.$patch;
    return strip(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: Obj = isObj(original) ? structuredClone(original) : {};
  const orders: [string, unknown[]][] = [];
  let retain: unknown[] | undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$retainKeys') {
      retain = Array.isArray(v) ? v : [];
    } else if (k.startsWith('$setElementOrder/')) {
      orders.push([k.slice('$setElementOrder/'.length), Array.isArray(v) ? v : []]);
    } else if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = Array.isArray(v) ? v : [];
      if (Array.isArray(out[field]))
        out[field] = (out[field] as unknown[]).filter((x) => !drop.includes(x));
    } else if (k.startsWith('$')) {
      continue;
    } else if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      out[k] = mergeList(k, out[k], v);
    } else {
      const merged = strategicMerge(out[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  for (const [field, order] of orders) {
    if (Array.isArray(out[field]))
      out[field] = reorder(out[field] as unknown[], order, mergeKeyOf(field, order));
  }
  if (retain) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  return out;
}
