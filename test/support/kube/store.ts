/**
 * The fake's etcd: objects by resource type, namespace and name, one global resourceVersion
 * counter, and a bounded log of watch events (so a watch can resume from a resourceVersion, and
 * gets 410 Expired when it asks for one the log no longer holds). The write paths here do what
 * the apiserver's registry does: decode, default, validate, keep the metadata it owns.
 */
import { randomUUID } from 'node:crypto';
import { applyDefaults } from './defaults.js';
import { jsonPatch, mergePatch, strategicMerge } from './patch.js';
import { apiVersionOf, resourceTypes, type ResourceType } from './resources.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  failure,
  notFound,
  preconditionFailed,
  qualified,
} from './status.js';
import { decode, validateObject, validateUpdate, type FieldValidation } from './validate.js';

export type Obj = Record<string, unknown>;
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  rt: ResourceType;
  object: Obj;
  /** The object before a MODIFIED (to tell a watch an object left its selector). */
  previous?: Obj;
}

export interface WriteOptions {
  fieldValidation: FieldValidation;
  dryRun: boolean;
}

export interface WriteResult {
  object: Obj;
  warnings: string[];
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function meta(o: Obj): Obj {
  if (!isObj(o.metadata)) o.metadata = {};
  return o.metadata as Obj;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

const generatedSuffix = 'bcdfghjklmnpqrstvwxz2456789';

export function randomSuffix(n: number): string {
  return Array.from(
    { length: n },
    () => generatedSuffix[Math.floor(Math.random() * generatedSuffix.length)],
  ).join('');
}

/** The part of an object a spec change is measured on (generation bumps when it changes). */
function specOf(o: Obj): string {
  const rest = { ...o };
  delete rest.metadata;
  delete rest.status;
  return JSON.stringify(rest);
}

function sameIgnoringRv(a: Obj, b: Obj): boolean {
  const strip = (o: Obj): string =>
    JSON.stringify({ ...o, metadata: { ...meta(o), resourceVersion: undefined } });
  return strip(a) === strip(b);
}

export class Store {
  private rv = 1;
  private readonly objects = new Map<string, Obj>();
  private readonly log: StoreEvent[] = [];
  private readonly listeners = new Set<(ev: StoreEvent) => void>();
  /** How many events the log keeps for watches that resume. */
  logLimit = 5000;

  private key(rt: ResourceType, ns: string | undefined, name: string): string {
    return `${qualified(rt)}/${rt.namespaced ? (ns ?? '') : ''}/${name}`;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  get oldestResourceVersion(): number {
    return this.log[0]?.rv ?? this.rv;
  }

  subscribe(fn: (ev: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  eventsSince(rv: number): StoreEvent[] {
    return this.log.filter((e) => e.rv > rv);
  }

  find(rt: ResourceType, ns: string | undefined, name: string): Obj | undefined {
    const o = this.objects.get(this.key(rt, ns, name));
    return o ? structuredClone(o) : undefined;
  }

  get(rt: ResourceType, ns: string | undefined, name: string): Obj {
    const o = this.find(rt, ns, name);
    if (!o) throw notFound(rt, name);
    return o;
  }

  list(rt: ResourceType, ns?: string): Obj[] {
    const prefix = `${qualified(rt)}/${rt.namespaced && ns ? ns : ''}`;
    return [...this.objects.entries()]
      .filter(([k]) =>
        ns || !rt.namespaced ? k.startsWith(`${prefix}/`) : k.startsWith(`${qualified(rt)}/`),
      )
      .map(([, o]) => structuredClone(o))
      .sort((a, b) =>
        `${String(meta(a).namespace)}/${String(meta(a).name)}`.localeCompare(
          `${String(meta(b).namespace)}/${String(meta(b).name)}`,
        ),
      );
  }

  /** Writes without validation: what controllers (status, pods) do. */
  write(rt: ResourceType, o: Obj, type: EventType): Obj {
    const m = meta(o);
    const key = this.key(rt, m.namespace as string | undefined, m.name as string);
    const previous = this.objects.get(key);
    this.rv += 1;
    if (type === 'DELETED') {
      this.objects.delete(key);
    } else {
      m.resourceVersion = String(this.rv);
      this.objects.set(key, structuredClone(o));
    }
    const ev: StoreEvent = { rv: this.rv, type, rt, object: structuredClone(o) };
    if (type === 'DELETED') meta(ev.object).resourceVersion = String(this.rv);
    if (previous && type === 'MODIFIED') ev.previous = structuredClone(previous);
    this.log.push(ev);
    if (this.log.length > this.logLimit) this.log.splice(0, this.log.length - this.logLimit);
    for (const l of this.listeners) l(ev);
    return structuredClone(o);
  }

  private checkBody(rt: ResourceType, body: unknown, ns: string | undefined): Obj {
    if (!isObj(body))
      throw badRequest(
        `${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: the body is not a JSON object`,
      );
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(rt))
      throw badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersionOf(rt)})`,
      );
    if (body.kind !== undefined && body.kind !== rt.kind)
      throw badRequest(
        `${String(body.kind)} in version "${rt.version}" cannot be handled as a ${rt.kind}: no kind "${String(body.kind)}" is registered for version "${apiVersionOf(rt)}"`,
      );
    const m = isObj(body.metadata) ? body.metadata : undefined;
    if (rt.namespaced && m?.namespace !== undefined && m.namespace !== '' && m.namespace !== ns)
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    return body;
  }

  private finish(rt: ResourceType, o: Obj, ns: string | undefined): void {
    o.apiVersion = apiVersionOf(rt);
    o.kind = rt.kind;
    const m = meta(o);
    if (rt.namespaced) m.namespace = ns;
    else delete m.namespace;
    applyDefaults(rt.kind, o);
  }

  create(rt: ResourceType, ns: string | undefined, body: unknown, opts: WriteOptions): WriteResult {
    const checked = this.checkBody(rt, body, ns);
    const { object: o, warnings } = decode(rt, checked, opts.fieldValidation);
    const m = meta(o);
    if (m.resourceVersion !== undefined && m.resourceVersion !== '')
      throw failure(
        500,
        'InternalError',
        'resourceVersion should not be set on objects to be created',
      );
    if ((m.name === undefined || m.name === '') && typeof m.generateName === 'string')
      m.name = `${m.generateName}${randomSuffix(5)}`;
    m.uid = randomUUID();
    m.creationTimestamp = now();
    delete m.deletionTimestamp;
    delete m.managedFields;
    if (rt.generation) m.generation = 1;
    else delete m.generation;
    // Status is the controllers' to write: a create resets it (PrepareForCreate), and the
    // defaults fill in the initial one.
    delete o.status;
    if (rt.kind === 'Deployment' || rt.kind === 'CronJob') o.status = {};
    this.finish(rt, o, ns);
    const error = validateObject(rt, o);
    if (error) throw error;
    if (rt.namespaced) this.checkNamespace(ns ?? '');
    if (this.find(rt, ns, m.name as string)) throw alreadyExists(rt, m.name as string);
    return { object: opts.dryRun ? o : this.write(rt, o, 'ADDED'), warnings };
  }

  private checkNamespace(ns: string): void {
    const nsType = namespaceType();
    const found = this.find(nsType, undefined, ns);
    if (!found) throw notFound(nsType, ns);
    if (isObj(found.status) && found.status.phase === 'Terminating')
      throw failure(
        403,
        'Forbidden',
        `unable to create new content in namespace ${ns} because it is being terminated`,
        {
          name: ns,
          kind: 'namespaces',
        },
      );
  }

  replace(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    body: unknown,
    opts: WriteOptions,
  ): WriteResult {
    const checked = this.checkBody(rt, body, ns);
    const old = this.get(rt, ns, name);
    return this.update(rt, ns, name, old, checked, opts);
  }

  private update(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    old: Obj,
    body: Obj,
    opts: WriteOptions,
  ): WriteResult {
    const { object: o, warnings } = decode(rt, body, opts.fieldValidation);
    const m = meta(o);
    if (m.name !== undefined && m.name !== name)
      throw badRequest(
        `the name of the object (${String(m.name)}) does not match the name on the URL (${name})`,
      );
    m.name = name;
    const om = meta(old);
    if (
      m.resourceVersion !== undefined &&
      m.resourceVersion !== '' &&
      m.resourceVersion !== om.resourceVersion
    )
      throw conflict(rt, name);
    if (m.uid !== undefined && m.uid !== '' && m.uid !== om.uid) throw conflict(rt, name);
    m.uid = om.uid;
    m.creationTimestamp = om.creationTimestamp;
    m.resourceVersion = om.resourceVersion;
    if (om.deletionTimestamp) m.deletionTimestamp = om.deletionTimestamp;
    else delete m.deletionTimestamp;
    delete m.managedFields;
    if (old.status !== undefined && rt.kind !== 'ConfigMap' && rt.kind !== 'Secret')
      o.status = old.status;
    this.finish(rt, o, ns);
    if (rt.generation)
      m.generation = (om.generation as number) + (specOf(o) === specOf(old) ? 0 : 1);
    const error = validateObject(rt, o) ?? validateUpdate(rt, old, o);
    if (error) throw error;
    if (sameIgnoringRv(o, old) || opts.dryRun) return { object: o, warnings };
    return { object: this.write(rt, o, 'MODIFIED'), warnings };
  }

  patch(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    contentType: string,
    patch: unknown,
    opts: WriteOptions,
  ): WriteResult {
    const old = this.get(rt, ns, name);
    let next: unknown;
    if (contentType === 'application/json-patch+json') next = jsonPatch(old, patch);
    else if (contentType === 'application/merge-patch+json') next = mergePatch(old, patch);
    else next = strategicMerge(old, patch);
    if (!isObj(next)) throw badRequest('the patch produced an object that is not a JSON object');
    const m = meta(next);
    // A patch that sets resourceVersion asks for optimistic concurrency; one that does not
    // keeps the stored one (the patch applies to the latest version).
    const patchRv =
      isObj(patch) && isObj(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (contentType === 'application/json-patch+json') {
      if (m.resourceVersion !== meta(old).resourceVersion) throw conflict(rt, name);
    } else if (patchRv !== undefined && patchRv !== null && patchRv !== meta(old).resourceVersion) {
      throw conflict(rt, name);
    }
    if (rt.kind === 'Deployment' || rt.kind === 'Service' || rt.kind === 'Namespace')
      next.status = old.status;
    return this.update(rt, ns, name, old, next, opts);
  }

  /** Writes a status (the /status subresource and the controllers): no generation change. */
  writeStatus(rt: ResourceType, o: Obj): Obj {
    return this.write(rt, o, 'MODIFIED');
  }

  remove(
    rt: ResourceType,
    ns: string | undefined,
    name: string,
    preconditions?: { uid?: string; resourceVersion?: string },
  ): Obj {
    const old = this.get(rt, ns, name);
    const om = meta(old);
    if (preconditions?.uid && preconditions.uid !== om.uid)
      throw preconditionFailed(
        rt,
        name,
        `UID in precondition: ${preconditions.uid}, UID in object meta: ${String(om.uid)}`,
      );
    if (preconditions?.resourceVersion && preconditions.resourceVersion !== om.resourceVersion)
      throw preconditionFailed(
        rt,
        name,
        `ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${String(om.resourceVersion)}`,
      );
    return this.write(rt, old, 'DELETED');
  }
}

function namespaceType(): ResourceType {
  const rt = resourceTypes.find((t) => t.kind === 'Namespace');
  if (!rt) throw new Error('the Namespace type is missing from resourceTypes');
  return rt;
}
