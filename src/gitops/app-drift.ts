/**
 * Drift checks for apps, as tofu-plan.ts gives them to stacks: what runs for an app (read back
 * through its Target) and the routes its deploy wrote are compared with the app's active release,
 * and what differs is told as a plan would tell it (a PlanSummary of addresses by action), so the
 * same `driftFingerprint` says "still the drift we reported" or "new drift".
 *
 * Addresses and actions (what a deploy of the active release would do about each):
 * - `process.<name>[<replica>]`: a replica of a long-running process. Missing: `create`. Present
 *   but not running: `replace` (the object is there, but what serves must be put on again; kept
 *   apart from `create` so a stopped replica that then disappears is new drift). Running another
 *   image than the release's, or carrying another release id (or none): `update`. A replica
 *   beyond the release's count, or of a process the release does not run: `delete`.
 * - `unit.<name>`: a second object in a replica's slot (the best one counts for the slot): `delete`.
 * - `schedule.<process>`: a scheduled process whose schedule the target does not list: `create`;
 *   a schedule the target lists for the app that the release does not have: `delete` of
 *   `schedule.<id as the target lists it>` (the target's ids cannot be mapped back to process
 *   names: kubernetes hashes them).
 * - `route.<hostname>` (`route.<hostname>[<path>]` for an endpoint with a path): a route the
 *   release's deploy writes that the ingress config lacks: `create`. Rules beyond those are not
 *   drift here, and a rule's service is not compared.
 * - `proxy.<process>`, on targets where norn runs the ingress proxy (docker: Caddy): a served
 *   process (a port and replicas) whose proxy route is missing: `create`, nothing answers on its
 *   port; a route listening on another port, or leaving out a running replica of the process
 *   (which then gets no traffic): `update`; a route of a process the release does not serve:
 *   `delete`. An upstream with no replica behind it is not told again here: the missing or
 *   stopped replica is its own address, and the proxy skips an upstream it cannot dial.
 *
 * Env is not compared: no target records a digest of a process's env that a check could
 * recompute. The docker target's `norn.config-hash` label hashes env together with the decrypted
 * secrets and the engine's image id, and kubernetes' `norn.dev/secret-sha256` covers secrets only;
 * comparing either means decrypting the release's secrets for every check. A container's env
 * cannot change in place either: a different env is a different container, which shows here only
 * through its image or release label.
 *
 * Nothing depends on container ids, timestamps or the order live state comes in: the fingerprint
 * is over sorted addresses, and the details are sorted by address.
 */
import { listIngress, type AppRoute } from '../shared/drivers/cloudflared.js';
import { normHost } from '../shared/drivers/cloudflared-routes.js';
import { NornError } from '../shared/errors.js';
import {
  formatProblems,
  parseInfraspec,
  servedPort,
  type DeployTarget,
  type Infraspec,
} from '../shared/spec/infraspec.js';
import { cronSchedulerId } from '../pipelines/deploy/cron.js';
import { isScheduled } from '../pipelines/deploy/docker-runtime.js';
import { ingressFor } from '../pipelines/deploy/ingress.js';
import type { Release, ReleaseStore } from '../pipelines/deploy/releases.js';
import { routesOf } from '../pipelines/deploy/steps/forge.js';
import type { DeployServices } from '../pipelines/deploy/types.js';
import { objectName } from '../targets/kubernetes/objects.js';
import { periodicJobId } from '../targets/nomad/translate.js';
import type { LiveState, LiveUnit, Target } from '../targets/types.js';
import { planSummary, type PlanSummary, type TerraformResourceChange } from './tofu-plan.js';

export interface AppDriftFinding {
  drifted: boolean;
  summary: PlanSummary;
  /** One line per difference, sorted by address ("web[1]: missing"). */
  details: string[];
}

/** What of the active release the comparison needs (`expectedOf` derives it from a release). */
export interface AppDriftRelease {
  /** The release every unit must carry. */
  id: number;
  /** The image every unit must run. */
  imageRef: string;
  /** Long-running processes by name, with how many replicas each runs. */
  processes: Record<string, { replicas: number }>;
  /** Scheduled processes that have a schedule on the target, by name: the id `live()` lists it by. */
  schedules: Record<string, string>;
  /** Long-running processes served on a port (they have one and replicas), by name: the port. */
  served?: Record<string, number>;
}

export interface AppDriftInput {
  app: string;
  /** The active release, or null when the app has none (nothing deployed yet). */
  release: AppDriftRelease | null;
  live: LiveState;
  /** `routeKey`s the release's deploy writes and those the ingress has for the app; absent: not checked. */
  routes?: { expected: string[]; present: string[] };
}

type Action = 'create' | 'update' | 'delete' | 'replace';
interface Found {
  address: string;
  action: Action;
  lines: string[];
}

const ACTIONS: Record<Action, string[]> = {
  create: ['create'],
  update: ['update'],
  delete: ['delete'],
  replace: ['delete', 'create'],
};

/** Pure: what differs between the live state (and routes) and the active release. */
export function compareAppDrift(input: AppDriftInput): AppDriftFinding {
  const { release } = input;
  if (!release)
    return finding(
      [],
      [`${input.app}: no active release (nothing deployed yet), nothing to compare`],
    );
  const found = [
    ...unitDrift(release, input.live.units),
    ...scheduleDrift(release, input.live.schedules),
    ...(input.routes ? routeDrift(input.routes) : []),
    ...(input.live.proxy ? proxyDrift(release, input.live) : []),
  ];
  found.sort((a, b) => byAddress(a.address, b.address));
  return finding(
    found,
    found.flatMap((f) => f.lines),
  );
}

function finding(found: Found[], details: string[]): AppDriftFinding {
  // Counted as tofu counts a plan: the same summary and fingerprint as a stack's drift.
  const changes: TerraformResourceChange[] = found.map((f) => ({
    address: f.address,
    change: { actions: ACTIONS[f.action] },
  }));
  return {
    drifted: found.length > 0,
    summary: planSummary({ format_version: '1.2', resource_changes: changes }),
    details,
  };
}

const byAddress = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
const slotOf = (u: Pick<LiveUnit, 'process' | 'replica'>) => `${u.process}[${u.replica}]`;

function unitDrift(release: AppDriftRelease, units: LiveUnit[]): Found[] {
  const slots = new Map<string, LiveUnit[]>();
  for (const u of units) slots.set(slotOf(u), [...(slots.get(slotOf(u)) ?? []), u]);
  const out: Found[] = [];
  for (const [process, { replicas }] of Object.entries(release.processes)) {
    for (let replica = 0; replica < replicas; replica++) {
      const slot = slotOf({ process, replica });
      const here = slots.get(slot) ?? [];
      slots.delete(slot);
      if (here.length === 0) {
        out.push({ address: `process.${slot}`, action: 'create', lines: [`${slot}: missing`] });
        continue;
      }
      const [unit, ...others] = here.sort(
        (a, b) => rank(release, a) - rank(release, b) || byAddress(a.name, b.name),
      );
      const wrong = unitProblems(release, unit!);
      if (wrong) out.push({ address: `process.${slot}`, ...wrong });
      out.push(...others.map((o) => second(slot, o)));
    }
  }
  for (const [slot, extra] of slots) {
    const [first, ...others] = extra.sort((a, b) => byAddress(a.name, b.name));
    const p = Object.hasOwn(release.processes, first!.process)
      ? release.processes[first!.process]
      : undefined;
    const why = p
      ? `not in release ${release.id} (it runs ${p.replicas} of ${first!.process})`
      : `process ${first!.process} is not in release ${release.id}`;
    out.push({ address: `process.${slot}`, action: 'delete', lines: [`${slot}: ${why}`] });
    out.push(...others.map((o) => second(slot, o)));
  }
  return out;
}

/** Which of a slot's objects counts for it: running and right first, then by name. */
const rank = (release: AppDriftRelease, u: LiveUnit) =>
  (u.running ? 0 : 2) + (u.image === release.imageRef && u.releaseId === release.id ? 0 : 1);

const second = (slot: string, u: LiveUnit): Found => ({
  address: `unit.${u.name}`,
  action: 'delete',
  lines: [`${slot}: a second object, ${u.name}`],
});

function unitProblems(release: AppDriftRelease, u: LiveUnit): Omit<Found, 'address'> | undefined {
  const slot = slotOf(u);
  const lines: string[] = [];
  if (!u.running) lines.push(`${slot}: not running`);
  if (u.image !== release.imageRef)
    lines.push(`${slot}: image ${u.image || '(none)'}, release has ${release.imageRef}`);
  if (u.releaseId !== release.id)
    lines.push(
      `${slot}: ${u.releaseId === undefined ? 'carries no release' : `release ${u.releaseId}`}, active release is ${release.id}`,
    );
  if (lines.length === 0) return undefined;
  return { action: u.running ? 'update' : 'replace', lines };
}

function scheduleDrift(release: AppDriftRelease, live: string[]): Found[] {
  const listed = new Set(live);
  const out: Found[] = [];
  for (const [process, id] of Object.entries(release.schedules)) {
    if (listed.delete(id)) continue;
    out.push({
      address: `schedule.${process}`,
      action: 'create',
      lines: [`schedule ${process}: missing (${id})`],
    });
  }
  for (const id of listed)
    out.push({
      address: `schedule.${id}`,
      action: 'delete',
      lines: [`schedule ${id}: not in release ${release.id}`],
    });
  return out;
}

function routeDrift(routes: { expected: string[]; present: string[] }): Found[] {
  const present = new Set(routes.present);
  return [...new Set(routes.expected)]
    .filter((key) => !present.has(key))
    .map((key) => ({
      address: `route.${key}`,
      action: 'create' as const,
      lines: [`route ${key}: not in the ingress config`],
    }));
}

function proxyDrift(release: AppDriftRelease, live: LiveState): Found[] {
  const routes = live.proxy ?? {};
  const out: Found[] = [];
  for (const [process, port] of Object.entries(release.served ?? {})) {
    const route = Object.hasOwn(routes, process) ? routes[process] : undefined;
    const address = `proxy.${process}`;
    if (!route) {
      out.push({
        address,
        action: 'create',
        lines: [`proxy route of ${process}: missing, so nothing answers on port ${port}`],
      });
      continue;
    }
    const lines: string[] = [];
    if (route.listenPort !== port)
      lines.push(
        `proxy route of ${process}: listens on port ${route.listenPort}, release ${release.id} serves it on ${port}`,
      );
    const routed = new Set(route.upstreams);
    for (const u of live.units
      .filter((u) => u.process === process && u.running && u.port !== undefined)
      .sort((a, b) => a.replica - b.replica || byAddress(a.name, b.name))) {
      if (!routed.has(u.port!))
        lines.push(
          `proxy route of ${process}: leaves out ${slotOf(u)} (port ${u.port}), which gets no traffic`,
        );
    }
    if (lines.length) out.push({ address, action: 'update', lines });
  }
  for (const [process, route] of Object.entries(routes)) {
    if (Object.hasOwn(release.served ?? {}, process)) continue;
    out.push({
      address: `proxy.${process}`,
      action: 'delete',
      lines: [
        `proxy route of ${process} (port ${route.listenPort}): release ${release.id} serves no process ${process}`,
      ],
    });
  }
  return out;
}

/** How a route is named in addresses: its host name, and its path (a regex) in brackets. */
export const routeKey = (r: Pick<AppRoute, 'hostname' | 'path'>) =>
  r.path ? `${r.hostname}[${r.path}]` : r.hostname;

/**
 * Per target: the id `live()` lists a scheduled process's schedule by, and whether a scheduled
 * process with 0 replicas has one (docker and nomad take 0 as off; kubernetes keeps the CronJob).
 */
const SCHEDULES = {
  docker: { id: cronSchedulerId, atZero: false },
  kubernetes: { id: objectName, atZero: true },
  nomad: { id: periodicJobId, atZero: false },
} satisfies Record<DeployTarget, { id: (app: string, process: string) => string; atZero: boolean }>;

/** What `release` (its spec parsed) puts on `target` for `app`. */
export function expectedOf(
  release: Pick<Release, 'id' | 'imageRef'>,
  spec: Infraspec,
  app: string,
  target: DeployTarget,
): AppDriftRelease {
  const processes: AppDriftRelease['processes'] = {};
  const schedules: AppDriftRelease['schedules'] = {};
  const served: Record<string, number> = {};
  const scheduling = SCHEDULES[target];
  for (const [name, p] of Object.entries(spec.processes)) {
    if (isScheduled(p)) {
      if (p.replicas > 0 || scheduling.atZero) schedules[name] = scheduling.id(app, name);
      continue;
    }
    processes[name] = { replicas: p.replicas };
    const port = servedPort(p);
    if (port !== undefined) served[name] = port;
  }
  return { id: release.id, imageRef: release.imageRef, processes, schedules, served };
}

/** The route keys the deploy's forge step writes for `spec` (none without endpoints: it skips). */
export function expectedRouteKeys(spec: Infraspec): string[] {
  if (!spec.endpoints?.length) return [];
  // Host names and paths do not depend on the service the rules send requests to.
  return routesOf(spec, 'http://drift.invalid').map(routeKey);
}

/**
 * Reads `app`'s ingress rules; undefined when its deploys write none (cloudflared not deployed).
 * `spec` is the app's spec as registered: its target says where the rules are.
 */
export type ReadRoutes = (
  app: string,
  spec: Infraspec,
  signal: AbortSignal,
) => Promise<AppRoute[] | undefined>;

/** `ReadRoutes` where the deploy's forge step writes them (ingress.ts), with its services. */
export function ingressRoutes(s: DeployServices): ReadRoutes {
  return async (app, spec, signal) => {
    const ingress = ingressFor(s, spec);
    if ('skip' in ingress) return undefined;
    const text = await ingress.read(signal);
    if (text === undefined) return undefined;
    return listIngress(text)
      .filter((r) => r.app === app && r.hostname !== undefined)
      .map((r) => ({ hostname: normHost(r.hostname)!, service: r.service, path: r.path }));
  };
}

export interface AppDriftDeps {
  releases: Pick<ReleaseStore, 'active'>;
  /** The target the app's spec deploys to (`targetFor`). */
  target: Target;
  /** Absent: routes are not checked. */
  readRoutes?: ReadRoutes;
}

/**
 * Reads the active release, target.live and (where the deploy routes through cloudflared) the
 * ingress, then compares. The release's own spec says what should run (an edited spec that was
 * not deployed is not drift); `app.spec` only says where the routes are read. A deploy under way
 * shows as drift (its containers carry a release that is not active yet): the caller checks
 * outside deploys (e.g. under the app's lock).
 */
export async function checkAppDrift(
  deps: AppDriftDeps,
  app: { id: string; spec: Infraspec },
  signal: AbortSignal = new AbortController().signal,
): Promise<AppDriftFinding> {
  const active = await deps.releases.active(app.id);
  if (!active) return compareAppDrift({ app: app.id, release: null, live: NOTHING });
  const spec = releaseSpec(active);
  const live = await deps.target.live(app.id, signal);
  const expected = expectedRouteKeys(spec);
  const present =
    expected.length > 0 && deps.readRoutes
      ? await deps.readRoutes(app.id, app.spec, signal)
      : undefined;
  return compareAppDrift({
    app: app.id,
    release: expectedOf(active, spec, app.id, deps.target.name),
    live,
    routes: present && { expected, present: present.map(routeKey) },
  });
}

const NOTHING: LiveState = { units: [], schedules: [] };

function releaseSpec(release: Release): Infraspec {
  const parsed = parseInfraspec(release.spec);
  if (parsed.ok) return parsed.spec;
  throw new NornError(
    'SPEC_INVALID',
    `release ${release.id} of ${release.appId} has a spec norn cannot read:\n${formatProblems(parsed.problems)}`,
  );
}
