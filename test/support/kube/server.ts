/**
 * A strict fake Kubernetes API server over HTTPS with a bearer token, for tests. It serves
 * discovery, the resource types in resources.ts (get, list, watch, create, replace, patch,
 * delete, deletecollection), Deployment /scale and /status, pod logs, and runs the rollout
 * controller (rollout.ts). It writes a kubeconfig that the real @kubernetes/client-node and
 * kubectl load. Everything it refuses, it refuses with the Status the real apiserver sends.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { jsonPatch, mergePatch } from './patch.js';
import { openApiV2, openApiV3Index, openApiV3Group } from './openapi.js';
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersionOf,
  apiVersions,
  findType,
  resourceTypes,
  versionInfo,
  type ResourceType,
} from './resources.js';
import { podImages, RolloutController, type RolloutOptions } from './rollout.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  badRequest,
  conflict,
  failure,
  gone,
  invalid,
  KubeError,
  methodNotAllowed,
  pathNotFound,
  success,
  unauthorized,
  unsupportedMediaType,
  type Status,
} from './status.js';
import { meta, Store, type Obj, type StoreEvent } from './store.js';
import type { FieldValidation } from './validate.js';
import { makeServerTls } from './tls.js';

export interface FakeKubeOptions extends Partial<RolloutOptions> {
  /** The bearer token clients must send (random when unset). */
  token?: string;
  /** What fieldValidation a request without the parameter gets. The real default is Warn; the
   * fake refuses unknown fields unless a test asks otherwise, so a typo in norn fails loudly. */
  defaultFieldValidation?: FieldValidation;
  /** Pod log text, for `GET .../pods/{name}/log` (default: a line per container; crash-looping
   * containers print `crashLog`). */
  logs?: (pod: Obj, container: string) => string;
  /** The tail a crash-looping container prints. */
  crashLog?: string;
}

export interface FakeKube {
  url: string;
  token: string;
  caCert: string;
  /** Path of a kubeconfig (context `fake`) with the CA data and the token. */
  kubeconfigPath: string;
  /** The same with a client certificate (and key) the cluster's CA issued, and no token. */
  certKubeconfigPath: string;
  /** The same with a self-signed client certificate: every request is 401 Unauthorized. */
  strangerKubeconfigPath: string;
  store: Store;
  controller: RolloutController;
  /** Every request seen, as `METHOD path?query` (to assert what a client sent). */
  requests: string[];
  /**
   * Makes the next `times` (default 1) requests matching `method` and `path` (a substring of
   * `path?query`) fail with `code` (429 TooManyRequests with Retry-After: 0, or a 5xx Status),
   * as an overloaded or restarting apiserver answers: to show a client retries them.
   */
  failNext(o: {
    code: 429 | 500 | 502 | 503 | 504;
    method?: string;
    path?: string;
    times?: number;
  }): void;
  close(): Promise<void>;
}

type Obj2 = Record<string, unknown>;

function send(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function sendStatus(res: ServerResponse, status: Status): void {
  send(res, status.code, status);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`json: ${(err as Error).message}`);
  }
}

const patchTypes = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
];

/** A POST or PUT body. Only JSON is decoded: protobuf (what kubectl's typed clients send for
 * imperative commands such as `kubectl create configmap`) is refused with 415. */
async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim();
  if (type !== 'application/json' && type !== '*/*') {
    req.resume();
    throw unsupportedMediaType(['application/json']);
  }
  return parseJson(await readBody(req));
}

function fieldValidationOf(q: URLSearchParams, fallback: FieldValidation): FieldValidation {
  const v = q.get('fieldValidation');
  if (v === null || v === '') return fallback;
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw badRequest(`fieldValidation must be one of "Ignore", "Warn", or "Strict", got "${v}"`);
}

interface Route {
  rt: ResourceType;
  namespace?: string;
  name?: string;
  sub?: string;
}

/** /api/v1/namespaces/ns/pods/x/log → {pods, ns, x, log}; undefined when not a resource path. */
function route(parts: string[]): Route | undefined {
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  if (
    rest[0] === 'namespaces' &&
    rest.length >= 3 &&
    findType(group, version, rest[2]!)?.namespaced
  ) {
    const rt = findType(group, version, rest[2]!)!;
    return { rt, namespace: rest[1], name: rest[3], sub: rest[4] };
  }
  const rt = findType(group, version, rest[0]!);
  if (!rt || rest.length > 3) return undefined;
  return { rt, name: rest[1], sub: rest[2] };
}

export async function startFakeKube(options: FakeKubeOptions = {}): Promise<FakeKube> {
  const tls = makeServerTls();
  const token = options.token ?? randomBytes(24).toString('hex');
  const defaultFieldValidation = options.defaultFieldValidation ?? 'Strict';
  const store = new Store();
  const rollout: RolloutOptions = {
    tickMs: options.tickMs ?? 100,
    secondMs: options.secondMs ?? 1000,
    crashMarker: options.crashMarker ?? 'crashloop',
    pullFailMarker: options.pullFailMarker ?? 'pullfail',
  };
  const controller = new RolloutController(store, rollout);
  const requests: string[] = [];
  const faults: { code: number; method?: string; path?: string; times: number }[] = [];
  const watches = new Set<ServerResponse>();
  const nsType = resourceTypes.find((t) => t.kind === 'Namespace')!;
  const writeOpts = { fieldValidation: 'Strict' as const, dryRun: false };
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
    store.create(nsType, undefined, { metadata: { name } }, writeOpts);

  const crashLog = options.crashLog ?? 'panic: cannot start: crashloop marker in the image\n';
  const logs =
    options.logs ??
    ((pod: Obj, container: string): string => {
      const c = podImages(pod).find((x) => x.name === container);
      if (c && controller.crashes(c)) return `starting ${c.image}\n${crashLog}`;
      return `starting ${c?.image ?? container}\nlistening\n`;
    });

  let address = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://fake');
    const seen = `${req.method} ${url.pathname}${url.search}`;
    requests.push(seen);
    const fault = faults.find(
      (f) =>
        f.times > 0 &&
        (f.method === undefined || f.method === req.method) &&
        (f.path === undefined || `${url.pathname}${url.search}`.includes(f.path)),
    );
    if (fault) {
      fault.times -= 1;
      req.resume();
      const reason =
        fault.code === 429
          ? 'TooManyRequests'
          : fault.code === 503
            ? 'ServiceUnavailable'
            : 'InternalError';
      return send(
        res,
        fault.code,
        {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message:
            fault.code === 429
              ? 'Too many requests, please try again later.'
              : 'the server is currently unable to handle the request',
          reason,
          details: { retryAfterSeconds: 0 },
          code: fault.code,
        },
        fault.code === 429 ? { 'Retry-After': '0' } : {},
      );
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (['/healthz', '/livez', '/readyz'].includes(path)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    // A bearer token, or a client certificate the cluster's CA issued (as an API server does).
    const socket = req.socket as TLSSocket;
    const certified = socket.authorized && Boolean(socket.getPeerCertificate()?.subject?.CN);
    if (req.headers.authorization !== `Bearer ${token}` && !certified) throw unauthorized();
    const q = url.searchParams;
    const parts = path.split('/').filter(Boolean);
    if (req.method === 'GET') {
      const discovery = discover(path);
      if (discovery !== undefined) return send(res, 200, discovery);
    }
    const r = route(parts);
    if (!r) throw pathNotFound();
    const { rt } = r;
    if (
      rt.namespaced &&
      r.namespace === undefined &&
      (r.name !== undefined || req.method !== 'GET')
    )
      throw pathNotFound();
    const ns = r.namespace;
    const opts = {
      fieldValidation: fieldValidationOf(q, defaultFieldValidation),
      dryRun: q.getAll('dryRun').includes('All'),
    };
    const warn = (warnings: string[]): Record<string, string> =>
      warnings.length > 0
        ? { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') }
        : {};

    if (r.name === undefined) {
      if (req.method === 'GET') {
        if (q.get('watch') === 'true' || q.get('watch') === '1') return watch(req, res, rt, ns, q);
        const labels = parseLabelSelector(q.get('labelSelector'));
        const fields = parseFieldSelector(q.get('fieldSelector'));
        const items = store
          .list(rt, ns)
          .filter((o) => labels((meta(o).labels ?? {}) as Record<string, string>) && fields(o))
          .map((o) => {
            const item = { ...o };
            delete item.kind;
            delete item.apiVersion;
            return item;
          });
        return send(res, 200, {
          kind: `${rt.kind}List`,
          apiVersion: apiVersionOf(rt),
          metadata: { resourceVersion: String(store.resourceVersion) },
          items,
        });
      }
      if (req.method === 'POST') {
        const { object, warnings } = store.create(rt, ns, await jsonBody(req), opts);
        return send(res, 201, object, warn(warnings));
      }
      if (req.method === 'DELETE') {
        const labels = parseLabelSelector(q.get('labelSelector'));
        const items = store
          .list(rt, ns)
          .filter((o) => labels((meta(o).labels ?? {}) as Record<string, string>));
        for (const o of items) store.remove(rt, ns, String(meta(o).name));
        return send(res, 200, {
          kind: `${rt.kind}List`,
          apiVersion: apiVersionOf(rt),
          metadata: { resourceVersion: String(store.resourceVersion) },
          items,
        });
      }
      throw methodNotAllowed();
    }

    const name = r.name;
    if (r.sub === 'log' && rt.kind === 'Pod') return podLog(res, ns!, name, q);
    if (r.sub === 'scale' && rt.kind === 'Deployment') return scale(req, res, rt, ns!, name, opts);
    if (r.sub === 'status' && (rt.kind === 'Deployment' || rt.kind === 'Namespace')) {
      if (req.method !== 'GET') throw methodNotAllowed();
      return send(res, 200, store.get(rt, ns, name));
    }
    if (r.sub !== undefined) throw pathNotFound();
    switch (req.method) {
      case 'GET':
        return send(res, 200, store.get(rt, ns, name));
      case 'PUT': {
        const { object, warnings } = store.replace(rt, ns, name, await jsonBody(req), opts);
        return send(res, 200, object, warn(warnings));
      }
      case 'PATCH': {
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        // Server-side apply (application/apply-patch+yaml) is not simulated.
        if (!patchTypes.includes(type)) throw unsupportedMediaType(patchTypes);
        const { object, warnings } = store.patch(
          rt,
          ns,
          name,
          type,
          parseJson(await readBody(req)),
          opts,
        );
        return send(res, 200, object, warn(warnings));
      }
      case 'DELETE': {
        const text = await readBody(req);
        const body = (text ? parseJson(text) : {}) as Obj2;
        const pre = (body.preconditions ?? {}) as { uid?: string; resourceVersion?: string };
        if (rt.kind === 'Namespace') {
          const o = store.get(rt, undefined, name);
          if (['default', 'kube-system', 'kube-public'].includes(name))
            throw failure(
              403,
              'Forbidden',
              `namespaces "${name}" is forbidden: this namespace may not be deleted`,
              {
                name,
                kind: 'namespaces',
              },
            );
          if (opts.dryRun) return send(res, 200, o);
          meta(o).deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
          o.status = { phase: 'Terminating' };
          return send(res, 200, store.writeStatus(rt, o));
        }
        if (opts.dryRun) return send(res, 200, store.get(rt, ns, name));
        const gone = store.remove(rt, ns, name, pre);
        if (rt.kind === 'Service' || rt.kind === 'Pod') return send(res, 200, gone);
        return send(res, 200, success(rt, name, String(meta(gone).uid)));
      }
      default:
        throw methodNotAllowed();
    }
  };

  const discover = (path: string): unknown => {
    if (path === '/version') return versionInfo();
    if (path === '/api') return apiVersions(address);
    if (path === '/apis') return apiGroupList();
    if (path === '/openapi/v2') return openApiV2();
    if (path === '/openapi/v3') return openApiV3Index();
    const v3 = /^\/openapi\/v3\/(api\/v1|apis\/[^/]+\/v1)$/.exec(path);
    if (v3) return openApiV3Group(v3[1]!);
    const core = /^\/api\/(v1)$/.exec(path);
    if (core) return apiResourceList('', core[1]!);
    const group = /^\/apis\/([^/]+)$/.exec(path);
    if (group) return apiGroup(group[1]!);
    const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (gv) return apiResourceList(gv[1]!, gv[2]!);
    return undefined;
  };

  const podLog = (res: ServerResponse, ns: string, name: string, q: URLSearchParams): void => {
    const pod = store.get(
      resourceTypes.find((t) => t.kind === 'Pod')!,
      ns,
      name,
    );
    const containers = podImages(pod).map((c) => c.name);
    const container = q.get('container') ?? containers[0] ?? '';
    if (!containers.includes(container))
      throw badRequest(`container ${container} is not valid for pod ${name}`);
    if (q.get('container') === null && containers.length > 1)
      throw badRequest(
        `a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`,
      );
    let text = logs(pod, container);
    const tail = q.get('tailLines');
    if (tail !== null) {
      const lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      text = lines
        .slice(-Number(tail))
        .map((l) => `${l}\n`)
        .join('');
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(text);
  };

  const scale = async (
    req: IncomingMessage,
    res: ServerResponse,
    rt: ResourceType,
    ns: string,
    name: string,
    opts: { fieldValidation: FieldValidation; dryRun: boolean },
  ): Promise<void> => {
    const toScale = (d: Obj): Obj => {
      const m = meta(d);
      const status = (d.status ?? {}) as Obj;
      const selector = ((d.spec as Obj).selector as Obj).matchLabels as Record<string, string>;
      return {
        kind: 'Scale',
        apiVersion: 'autoscaling/v1',
        metadata: {
          name: m.name,
          namespace: m.namespace,
          uid: m.uid,
          resourceVersion: m.resourceVersion,
          creationTimestamp: m.creationTimestamp,
        },
        spec: { replicas: (d.spec as Obj).replicas },
        status: {
          replicas: status.replicas ?? 0,
          selector: Object.entries(selector ?? {})
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
        },
      };
    };
    if (req.method === 'GET') return send(res, 200, toScale(store.get(rt, ns, name)));
    const body = parseJson(await readBody(req)) as Obj2;
    const current = toScale(store.get(rt, ns, name));
    let replicas: unknown;
    if (req.method === 'PUT') {
      const m = (body.metadata ?? {}) as Obj2;
      if (m.resourceVersion && m.resourceVersion !== (current.metadata as Obj).resourceVersion)
        throw conflict(rt, name);
      replicas = (body.spec as Obj2 | undefined)?.replicas;
    } else if (req.method === 'PATCH') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      const next = (
        type === 'application/json-patch+json'
          ? jsonPatch(current, body)
          : mergePatch(current, body)
      ) as Obj2;
      replicas = (next.spec as Obj2 | undefined)?.replicas;
    } else {
      throw methodNotAllowed();
    }
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0)
      throw invalid({ ...rt, kind: 'Scale', group: 'autoscaling' }, name, [
        {
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
          field: 'spec.replicas',
        },
      ]);
    const { object } = store.patch(
      rt,
      ns,
      name,
      'application/merge-patch+json',
      { spec: { replicas } },
      opts,
    );
    return send(res, 200, toScale(object));
  };

  const watch = (
    req: IncomingMessage,
    res: ServerResponse,
    rt: ResourceType,
    ns: string | undefined,
    q: URLSearchParams,
  ): void => {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    const matches = (o: Obj): boolean =>
      (!rt.namespaced || ns === undefined || meta(o).namespace === ns) &&
      labels((meta(o).labels ?? {}) as Record<string, string>) &&
      fields(o);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    watches.add(res);
    const emit = (type: string, object: unknown): void => {
      res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const deliver = (ev: StoreEvent): void => {
      if (ev.rt !== rt) return;
      const now = matches(ev.object);
      const before = ev.previous ? matches(ev.previous) : false;
      if (ev.type === 'MODIFIED' && !now && before) emit('DELETED', ev.object);
      else if (ev.type === 'MODIFIED' && now && !before && ev.previous) emit('ADDED', ev.object);
      else if (now) emit(ev.type, ev.object);
    };
    const rvParam = q.get('resourceVersion');
    if (rvParam === null || rvParam === '' || rvParam === '0') {
      for (const o of store.list(rt, ns)) if (matches(o)) emit('ADDED', o);
    } else {
      const rv = Number(rvParam);
      if (!Number.isInteger(rv)) {
        emit('ERROR', badRequest(`invalid resource version: ${rvParam}`).status);
        res.end();
        return;
      }
      if (rv < store.oldestResourceVersion - 1) {
        emit(
          'ERROR',
          gone(`too old resource version: ${rv} (${store.oldestResourceVersion})`).status,
        );
        res.end();
        watches.delete(res);
        return;
      }
      for (const ev of store.eventsSince(rv)) deliver(ev);
    }
    const unsubscribe = store.subscribe(deliver);
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const end = (): void => {
      unsubscribe();
      clearTimeout(timer);
      watches.delete(res);
    };
    res.on('close', end);
    req.on('close', end);
  };

  const server: Server = createServer(
    // Client certificates are asked for, not required: token clients send none.
    { cert: tls.cert, key: tls.key, ca: tls.caCert, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (res.headersSent) {
          res.end();
          return;
        }
        if (err instanceof KubeError) return sendStatus(res, err.status);
        sendStatus(res, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: String((err as Error)?.stack ?? err),
          reason: 'InternalError',
          code: 500,
        });
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  address = `127.0.0.1:${port}`;
  const url = `https://${address}`;
  const dir = mkdtempSync(join(tmpdir(), 'kube-fake-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfig(url, tls.caCert, { token }));
  const certKubeconfigPath = join(dir, 'kubeconfig-cert');
  writeFileSync(certKubeconfigPath, kubeconfig(url, tls.caCert, certUser(tls.client)));
  const strangerKubeconfigPath = join(dir, 'kubeconfig-stranger');
  writeFileSync(strangerKubeconfigPath, kubeconfig(url, tls.caCert, certUser(tls.stranger)));
  controller.start();
  return {
    url,
    token,
    caCert: tls.caCert,
    kubeconfigPath,
    certKubeconfigPath,
    strangerKubeconfigPath,
    store,
    controller,
    requests,
    failNext: (o) => {
      faults.push({ ...o, times: o.times ?? 1 });
    },
    close: async () => {
      controller.stop();
      for (const w of watches) w.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const certUser = (c: { cert: string; key: string }) => ({
  'client-certificate-data': Buffer.from(c.cert).toString('base64'),
  'client-key-data': Buffer.from(c.key).toString('base64'),
});

function kubeconfig(url: string, ca: string, user: Record<string, string>): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'fake',
      clusters: [
        {
          name: 'fake',
          cluster: {
            server: url,
            'certificate-authority-data': Buffer.from(ca).toString('base64'),
          },
        },
      ],
      users: [{ name: 'fake', user }],
      contexts: [
        { name: 'fake', context: { cluster: 'fake', user: 'fake', namespace: 'default' } },
      ],
    },
    null,
    2,
  );
}
