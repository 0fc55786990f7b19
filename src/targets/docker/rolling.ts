/**
 * Rolling a release out on a Docker host without dropping a request. Per replica slot: start the
 * new container on a free port, wait until it answers its health path, add it to the process's
 * route on the ingress proxy, take the slot's old container out of the route, let it drain
 * (NORN_DRAIN_MS: its in-flight requests finish), then stop and remove it. A failure midway
 * leaves every old replica serving: an old one leaves the route only after its successor is in.
 *
 * Idempotent: a slot whose container of this release already runs keeps it (same name, same
 * port, so `docker.run` keeps it too) and the routes are set again, so a step re-run after a
 * kill, or a rollback to the release that ran, converges on what that release is.
 */
import { portIsFree, type ContainerSummary } from '../../shared/drivers/docker.js';
import { NornError } from '../../shared/errors.js';
import { pause } from '../../shared/pause.js';
import { scrubbed } from '../../shared/scrub.js';
import { durationMs } from '../../shared/spec/infraspec.js';
import type { TargetRelease } from '../types.js';
import { replicaName, routeId, routePrefix } from './names.js';
import { waitForReplica, type Replica } from './replica-check.js';
import {
  LABELS,
  appReplicas,
  inSlot,
  portOf,
  processCmd,
  processEnv,
  replicaOf,
  slotsOf,
  type RuntimeCall,
  type Slot,
} from './runtime.js';

export interface RollOut {
  release: Pick<TargetRelease, 'app' | 'id' | 'deploymentId' | 'imageRef' | 'spec' | 'secrets'>;
  /** Called just before the first container is changed. */
  onTouch?: () => void;
}

/** The upstream ports of each routed process, as the rollout keeps the proxy's routes. */
type Routes = Map<string, RouteState>;
/** `live`: the proxy has this route on this port now (else setRoute must take the port first). */
interface RouteState {
  listenPort: number;
  upstreams: number[];
  live: boolean;
}

/** Starts the release's replicas slot by slot (module comment); returns their container names. */
export async function rollOut(call: RuntimeCall, o: RollOut): Promise<string[]> {
  const { app, spec } = o.release;
  const slots = slotsOf(spec);
  const before = await appReplicas(call.docker, app);
  const routes = await currentRoutes(call, app, slots);
  await assertServedPortsFree(call, app, routes, before);
  const started: Replica[] = [];
  for (const slot of slots) {
    o.onTouch?.();
    const mine = before.filter((c) => inSlot(c, slot));
    const replica = await startReplica(call, o, slot, mine, routes);
    started.push(replica);
    const old = mine.filter((c) => c.name !== replica.name);
    const route = routes.get(slot.process);
    if (route && replica.port !== undefined) {
      await setRoute(call, app, slot.process, route, [...route.upstreams, replica.port], before);
      const oldPorts = old.flatMap((c) => portOf(c) ?? []).filter((p) => p !== replica.port);
      await leaveRoute(call, app, slot.process, route, oldPorts);
    }
    for (const c of old) {
      call.log(`removing ${c.name} (replaced by ${replica.name})`);
      await call.docker.stopAndRemove(c.id);
    }
  }
  // Each route is now exactly the release's replicas: anything else (scaled down, a port left from
  // a run that died) leaves it and drains first; then containers the release has not are stopped.
  const names = started.map((r) => r.name);
  for (const [process, route] of routes) {
    const keep = started.filter((r) => r.process === process).map((r) => r.port);
    await leaveRoute(
      call,
      app,
      process,
      route,
      route.upstreams.filter((p) => !keep.includes(p)),
    );
  }
  const extra = (await appReplicas(call.docker, app)).filter((c) => !names.includes(c.name));
  await pruneRoutes(call, app, new Set(routes.keys()));
  for (const c of extra) {
    call.log(`removing ${c.name}`);
    await call.docker.stopAndRemove(c.id);
  }
  return names;
}

/** The routes the release's processes with a port get, starting from what the proxy has now. */
async function currentRoutes(call: RuntimeCall, app: string, slots: Slot[]): Promise<Routes> {
  const routes: Routes = new Map();
  for (const s of slots) {
    if (s.servedPort === undefined || routes.has(s.process)) continue;
    const now = await call.ingress.proxy.route(routeId(app, s.process), call.signal);
    // A route on another port serves nobody the spec names: start it afresh on the new one.
    const live = now?.listenPort === s.servedPort;
    routes.set(s.process, { listenPort: s.servedPort, upstreams: live ? now.upstreams : [], live });
  }
  return routes;
}

/**
 * Before anything changes: CONFLICT when a port the release is served on is taken, by another
 * route of the proxy (another app's, named) or by a process norn did not start, so a deploy that
 * could never be routed fails at once, before it starts a replica. The app's own containers from
 * before the proxy (listening on the port themselves) are no obstacle: setRoute replaces them.
 */
async function assertServedPortsFree(
  call: RuntimeCall,
  app: string,
  routes: Routes,
  before: ContainerSummary[],
): Promise<void> {
  const others = await call.ingress.proxy.routes(call.signal);
  for (const [process, route] of routes) {
    const id = routeId(app, process);
    const owner = Object.entries(others).find(
      ([other, r]) => other !== id && r.listenPort === route.listenPort,
    )?.[0];
    let who = owner && `the ingress proxy's route ${owner}`;
    if (!who && !(await portIsFree(route.listenPort))) {
      const ours =
        others[id]?.listenPort === route.listenPort || unrouted(before, process, route).length > 0;
      if (!ours) who = 'a process norn did not start';
    }
    if (!who) continue;
    throw new NornError(
      'CONFLICT',
      `port ${route.listenPort} is already in use on the Docker host by ${who}, so the ingress proxy cannot serve process ${process} of app ${app} there`,
      { details: { port: route.listenPort } },
    );
  }
}

/** The app's containers of `process` the route does not send to (norn's from before the proxy). */
const unrouted = (before: ContainerSummary[], process: string, route: { upstreams: number[] }) =>
  before.filter(
    (c) => c.labels[LABELS.process] === process && !route.upstreams.includes(portOf(c) ?? -1),
  );

/** Starts (or keeps) the slot's container of this release and waits until it is healthy. */
async function startReplica(
  call: RuntimeCall,
  o: RollOut,
  slot: Slot,
  mine: ContainerSummary[],
  routes: Routes,
): Promise<Replica> {
  const { app, id, spec, secrets } = o.release;
  const serves = slot.servedPort !== undefined;
  const current = mine.find((c) => c.labels[LABELS.release] === String(id));
  let replica: Replica;
  if (current && (!serves || portOf(current) !== undefined)) {
    replica = replicaOf(slot, current.name, serves ? portOf(current) : undefined);
  } else {
    // The name the slot's serving container does not have (its old one keeps serving meanwhile).
    const routed = routes.get(slot.process)?.upstreams ?? [];
    const serving = mine.find((c) => !serves || routed.includes(portOf(c) ?? -1)) ?? mine[0];
    const first = replicaName(app, slot.process, slot.index);
    const name = serving?.name === first ? replicaName(app, slot.process, slot.index, true) : first;
    replica = replicaOf(slot, name, serves ? await freeReplicaPort(call) : undefined);
  }
  call.log(
    `starting ${replica.name} (${o.release.imageRef})${replica.port === undefined ? '' : ` on port ${replica.port}`}`,
  );
  const started = await call.docker
    .run({
      name: replica.name,
      image: o.release.imageRef,
      cmd: processCmd(spec.processes[slot.process]),
      env: processEnv(spec, slot.process, secrets, replica.port),
      labels: {
        [LABELS.app]: app,
        [LABELS.process]: slot.process,
        [LABELS.replica]: String(slot.index),
        [LABELS.deployment]: o.release.deploymentId,
        [LABELS.release]: String(id),
      },
      ports: replica.port === undefined ? undefined : [replica.port],
      signal: call.signal,
    })
    .catch((err: unknown) => {
      throw scrubbed(err, call.redact);
    });
  const expect = { releaseId: id, restarts: started.restartCount };
  try {
    await waitForReplica(call, replica, expect, durationMs(spec.deployPolicy.healthTimeout));
  } catch (err) {
    // Never routed: the old replicas serve on; the one that failed goes (its error says why).
    if (replica.name !== current?.name)
      await call.docker.stopAndRemove(replica.name).catch(() => undefined);
    throw err;
  }
  call.log(
    replica.healthUrl
      ? `${replica.name} answers ${replica.healthUrl}`
      : `${replica.name} is running`,
  );
  return replica;
}

/**
 * Sets `process`'s route to `upstreams` (deduplicated). A container of the app's that norn
 * started before the proxy existed listens on the served port itself: the proxy can only take
 * the port once it is gone, so it is removed then (the one moment a migrating app is not served).
 */
async function setRoute(
  call: RuntimeCall,
  app: string,
  process: string,
  route: RouteState,
  upstreams: number[],
  before: ContainerSummary[],
): Promise<void> {
  const next = [...new Set(upstreams)];
  const id = routeId(app, process);
  if (!route.live) await takeServedPort(call, process, route, before);
  await call.ingress.proxy.setRoute(
    id,
    { listenPort: route.listenPort, upstreams: next },
    call.signal,
  );
  route.live = true;
  call.log(`route ${id}: port ${route.listenPort} → ${next.join(', ') || '(none)'}`);
  route.upstreams = next;
}

/**
 * Makes sure the proxy can listen on a route's new port before it is asked to: Caddy 2.6 keeps
 * the listeners of every other route open for good when a config it loads fails to bind (they
 * stay bound after those routes go), so norn never sends one that cannot bind. Containers norn
 * started before the proxy listen on the served port themselves (replica i on port + i): they go
 * first (a migrating app's one gap). Anything else there: CONFLICT.
 */
async function takeServedPort(
  call: RuntimeCall,
  process: string,
  route: RouteState,
  before: ContainerSummary[],
): Promise<void> {
  if (await portIsFree(route.listenPort)) return;
  for (const holder of unrouted(before, process, route).filter((c) => c.state === 'running')) {
    call.log(`${holder.name} may listen on port ${route.listenPort} itself: removing it`);
    await call.docker.stopAndRemove(holder.id);
  }
  if (await portIsFree(route.listenPort)) return;
  throw new NornError(
    'CONFLICT',
    `port ${route.listenPort} is already in use on the Docker host by a process norn did not start, so the ingress proxy cannot serve process ${process} there`,
    { details: { port: route.listenPort } },
  );
}

/** Takes `ports` out of the route and waits for their in-flight requests (nothing to do: no wait). */
async function leaveRoute(
  call: RuntimeCall,
  app: string,
  process: string,
  route: RouteState,
  ports: number[],
): Promise<void> {
  const leaving = route.upstreams.filter((p) => ports.includes(p));
  if (leaving.length === 0) return;
  await setRoute(
    call,
    app,
    process,
    route,
    route.upstreams.filter((p) => !leaving.includes(p)),
    [],
  );
  call.log(`draining port ${leaving.join(', ')} for ${call.ingress.drainMs} ms`);
  await pause(call.ingress.drainMs, call.signal);
}

/** Removes the app's routes other than `keep`'s (a process that lost its port or was removed). */
export async function pruneRoutes(
  call: RuntimeCall,
  app: string,
  keep: Set<string>,
): Promise<string[]> {
  const ids = await call.ingress.proxy.routeIds(routePrefix(app), call.signal);
  const gone = ids.filter((id) => ![...keep].some((p) => routeId(app, p) === id));
  for (const id of gone) {
    call.log(`removing route ${id}`);
    await call.ingress.proxy.removeRoute(id, call.signal);
  }
  return gone;
}

/**
 * A port in NORN_DOCKER_REPLICA_PORTS that nothing listens on and no container recorded: tried at
 * random, so two workers starting replicas at once rarely pick the same one (and the driver checks
 * again right before it starts the container).
 */
async function freeReplicaPort(call: RuntimeCall): Promise<number> {
  const { first, last } = call.ingress.replicaPorts;
  const recorded = new Set((await call.docker.list({})).map(portOf).filter((p) => p !== undefined));
  for (let tries = 0; tries < 100; tries++) {
    const port = first + Math.floor(Math.random() * (last - first + 1));
    if (!recorded.has(port) && (await portIsFree(port))) return port;
  }
  throw new NornError(
    'UNAVAILABLE',
    `no free port for a replica in NORN_DOCKER_REPLICA_PORTS (${first}-${last}) after 100 tries`,
    { retryable: true },
  );
}
