/**
 * Nomad variables: read, write and delete with check-and-set (`?cas=N`, where 0 means "must not
 * exist"), a conflict answered HTTP 409 with the current variable as Nomad does
 * (command/agent/variable_endpoint.go), a delete answered 204.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError, readBody } from './http.js';
import { type Store, type Variable, jobKey, nowNs } from './store.js';
import type { Job } from './validate.js';

export async function routeVar(
  store: Store,
  method: string,
  path: string,
  ns: string,
  q: Record<string, string>,
  req: IncomingMessage,
): Promise<unknown> {
  const key = jobKey(ns, path);
  const current = store.vars.get(key);
  const cas = q.cas === undefined ? undefined : Number(q.cas);
  if (cas !== undefined && !Number.isInteger(cas))
    throw new HttpError(400, `can not parse cas: invalid syntax`);
  const conflict = (): never => {
    throw new HttpError(
      409,
      'conflict',
      current ?? {
        Namespace: ns,
        Path: path,
        CreateIndex: 0,
        ModifyIndex: 0,
        CreateTime: 0,
        ModifyTime: 0,
        Items: null,
      },
    );
  };
  if (method === 'GET') {
    if (!current) throw new HttpError(404, 'variable not found');
    return current;
  }
  if (method === 'PUT' || method === 'POST') {
    const body = (await readBody(req)) as Job;
    const items = body?.Items;
    if (
      typeof items !== 'object' ||
      items === null ||
      Object.values(items).some((v) => typeof v !== 'string')
    ) {
      throw new HttpError(400, 'json: cannot unmarshal Items: expected an object of strings');
    }
    if (cas !== undefined && (current?.ModifyIndex ?? 0) !== cas) conflict();
    const index = store.write('vars');
    const now = nowNs();
    const v: Variable = {
      Namespace: ns,
      Path: path,
      CreateIndex: current?.CreateIndex ?? index,
      ModifyIndex: index,
      CreateTime: current?.CreateTime ?? now,
      ModifyTime: now,
      Items: items as Record<string, string>,
    };
    store.vars.set(key, v);
    return v;
  }
  if (method === 'DELETE') {
    if (cas !== undefined && (current?.ModifyIndex ?? 0) !== cas) conflict();
    store.vars.delete(key);
    store.write('vars');
    return undefined;
  }
  throw new HttpError(405, 'Invalid method');
}
