import { describe, expect, it } from 'vitest';
import {
  compareAppDrift,
  expectedOf,
  expectedRouteKeys,
  routeKey,
  type AppDriftInput,
  type AppDriftRelease,
} from '../../src/gitops/app-drift.js';
import { driftFingerprint } from '../../src/gitops/tofu-plan.js';
import { parseInfraspec, type Infraspec } from '../../src/shared/spec/infraspec.js';
import type { LiveUnit } from '../../src/targets/types.js';

const IMAGE = 'registry/x:def';
const RELEASE: AppDriftRelease = {
  id: 8,
  imageRef: IMAGE,
  processes: { web: { replicas: 2 }, worker: { replicas: 1 } },
  schedules: { tick: 'shop.tick' },
};

const unit = (process: string, replica: number, o: Partial<LiveUnit> = {}): LiveUnit => ({
  name: `norn.shop.${process}.${replica}`,
  process,
  replica,
  releaseId: 8,
  image: IMAGE,
  running: true,
  ...o,
});

/** Everything the release has, running as it should. */
const clean = (): AppDriftInput => ({
  app: 'shop',
  release: RELEASE,
  live: {
    units: [unit('web', 0), unit('web', 1), unit('worker', 0)],
    schedules: ['shop.tick'],
  },
  routes: { expected: ['shop.example.test'], present: ['shop.example.test'] },
});

/** `clean()` with its live units changed by `edit`. */
const withUnits = (edit: (units: LiveUnit[]) => LiveUnit[]): AppDriftInput => {
  const input = clean();
  return { ...input, live: { ...input.live, units: edit(input.live.units) } };
};
const replacing = (name: string, by: Partial<LiveUnit>) =>
  withUnits((us) => us.map((u) => (u.name === name ? { ...u, ...by } : u)));

const none = { create: [], update: [], delete: [], replace: [] };

/** A rule of the comparison: this input finds these addresses by action, told by these lines. */
interface Case {
  rule: string;
  input: AppDriftInput;
  byAction: Partial<Record<'create' | 'update' | 'delete' | 'replace', string[]>>;
  details: string[];
}
const expectFinding = ({ input, byAction, details }: Case) => {
  const found = compareAppDrift(input);
  expect(found.summary.byAction).toEqual({ ...none, ...byAction });
  expect(found.details).toEqual(details);
  expect(found.drifted).toBe(details.length > 0);
};

describe('compareAppDrift', () => {
  it('finds nothing when the live state and routes are what the release put on', () => {
    const found = compareAppDrift(clean());
    expect(found).toEqual({
      drifted: false,
      summary: { add: 0, change: 0, destroy: 0, byAction: none },
      details: [],
    });
  });

  it('is not drift when there is no active release (nothing deployed yet), and says so', () => {
    const found = compareAppDrift({ ...clean(), release: null });
    expect(found.drifted).toBe(false);
    expect(found.summary.byAction).toEqual(none);
    expect(found.details).toEqual([
      'shop: no active release (nothing deployed yet), nothing to compare',
    ]);
  });

  it.each<Case>([
    {
      rule: 'a missing replica is created',
      input: withUnits((us) => us.filter((u) => u.name !== 'norn.shop.web.1')),
      byAction: { create: ['process.web[1]'] },
      details: ['web[1]: missing'],
    },
    {
      rule: 'every replica of a missing process is created',
      input: withUnits((us) => us.filter((u) => u.process !== 'web')),
      byAction: { create: ['process.web[0]', 'process.web[1]'] },
      details: ['web[0]: missing', 'web[1]: missing'],
    },
    {
      rule: 'a replica that is there but not running is replaced',
      input: replacing('norn.shop.web.0', { running: false }),
      byAction: { replace: ['process.web[0]'] },
      details: ['web[0]: not running'],
    },
    {
      rule: 'a replica running another image is updated',
      input: replacing('norn.shop.web.0', { image: 'registry/x:abc' }),
      byAction: { update: ['process.web[0]'] },
      details: ['web[0]: image registry/x:abc, release has registry/x:def'],
    },
    {
      rule: 'a replica of another release is updated',
      input: replacing('norn.shop.worker.0', { releaseId: 7 }),
      byAction: { update: ['process.worker[0]'] },
      details: ['worker[0]: release 7, active release is 8'],
    },
    {
      rule: 'a replica that carries no release is updated',
      input: replacing('norn.shop.web.1', { releaseId: undefined }),
      byAction: { update: ['process.web[1]'] },
      details: ['web[1]: carries no release, active release is 8'],
    },
    {
      rule: 'a stopped replica of another image is replaced (one address, one action), every reason told',
      input: replacing('norn.shop.web.1', { running: false, image: 'registry/x:abc' }),
      byAction: { replace: ['process.web[1]'] },
      details: ['web[1]: not running', 'web[1]: image registry/x:abc, release has registry/x:def'],
    },
    {
      rule: 'a replica beyond the release count is deleted',
      input: withUnits((us) => [...us, unit('web', 2)]),
      byAction: { delete: ['process.web[2]'] },
      details: ['web[2]: not in release 8 (it runs 2 of web)'],
    },
    {
      rule: 'the replicas of a process the release does not run are deleted',
      input: withUnits((us) => [...us, unit('old', 0, { releaseId: 7 })]),
      byAction: { delete: ['process.old[0]'] },
      details: ['old[0]: process old is not in release 8'],
    },
    {
      rule: 'a second object in a slot is deleted by its name; the right one counts for the slot',
      input: withUnits((us) => [
        unit('web', 0, { name: 'norn-shop-web-0', image: 'registry/x:abc', releaseId: 7 }),
        ...us,
      ]),
      byAction: { delete: ['unit.norn-shop-web-0'] },
      details: ['web[0]: a second object, norn-shop-web-0'],
    },
    {
      rule: 'a scheduled process without its schedule gets it created',
      input: { ...clean(), live: { ...clean().live, schedules: [] } },
      byAction: { create: ['schedule.tick'] },
      details: ['schedule tick: missing (shop.tick)'],
    },
    {
      rule: 'a schedule the release does not have is deleted by its id',
      input: { ...clean(), live: { ...clean().live, schedules: ['shop.tick', 'shop.nightly'] } },
      byAction: { delete: ['schedule.shop.nightly'] },
      details: ['schedule shop.nightly: not in release 8'],
    },
    {
      rule: 'a route the release expects that the ingress lacks is created',
      input: {
        ...clean(),
        routes: {
          expected: ['shop.example.test', 'api.example.test[^/v1]'],
          present: ['shop.example.test', 'api.example.test'],
        },
      },
      byAction: { create: ['route.api.example.test[^/v1]'] },
      details: ['route api.example.test[^/v1]: not in the ingress config'],
    },
    {
      rule: 'rules beyond the expected routes are not drift',
      input: {
        ...clean(),
        routes: { expected: ['shop.example.test'], present: ['shop.example.test', 'x.test'] },
      },
      byAction: {},
      details: [],
    },
    {
      rule: 'routes are not checked when none are given',
      input: { ...clean(), routes: undefined },
      byAction: {},
      details: [],
    },
  ])('$rule', expectFinding);

  it('counts as a plan does: a replacement is one to add and one to destroy', () => {
    const input = withUnits(([web0, web1, worker0]) => [
      { ...web0!, running: false },
      { ...web1!, image: 'registry/x:abc' },
      worker0!,
      unit('web', 2),
    ]);
    input.live.schedules = [];
    const { summary } = compareAppDrift(input);
    expect(summary).toEqual({
      add: 2,
      change: 1,
      destroy: 2,
      byAction: {
        create: ['schedule.tick'],
        update: ['process.web[1]'],
        delete: ['process.web[2]'],
        replace: ['process.web[0]'],
      },
    });
  });

  it('neither the summary, the details nor the fingerprint depend on the order of the live state', () => {
    const drifted = withUnits(([web0, , worker0]) => [
      { ...web0!, running: false },
      { ...worker0!, releaseId: 7 },
      unit('web', 10),
      unit('web', 2),
      unit('old', 0),
    ]);
    drifted.live.schedules = ['shop.b', 'shop.a'];
    const reversed: AppDriftInput = {
      ...drifted,
      live: {
        units: [...drifted.live.units].reverse(),
        schedules: [...drifted.live.schedules].reverse(),
      },
      routes: { expected: ['b.test', 'a.test'], present: [] },
    };
    drifted.routes = { expected: ['a.test', 'b.test'], present: [] };
    const a = compareAppDrift(drifted);
    const b = compareAppDrift(reversed);
    expect(b).toEqual(a);
    expect(driftFingerprint(b.summary)).toBe(driftFingerprint(a.summary));
    // Replicas in numeric order: web[2] before web[10].
    expect(a.details.filter((d) => d.startsWith('web['))).toEqual([
      'web[0]: not running',
      'web[1]: missing',
      'web[2]: not in release 8 (it runs 2 of web)',
      'web[10]: not in release 8 (it runs 2 of web)',
    ]);
  });

  it("keeps its fingerprint while the drift stays the same, whatever the objects' names", () => {
    const once = compareAppDrift(replacing('norn.shop.web.0', { running: false }));
    // The same replica stopped, now a container of another name in its slot (a recreated object).
    const again = compareAppDrift(
      replacing('norn.shop.web.0', { running: false, name: 'norn-shop-web-0' }),
    );
    expect(driftFingerprint(again.summary)).toBe(driftFingerprint(once.summary));
    const other = compareAppDrift(
      withUnits((us) => us.filter((u) => u.name !== 'norn.shop.web.0')),
    );
    expect(driftFingerprint(other.summary)).not.toBe(driftFingerprint(once.summary));
    expect(driftFingerprint(compareAppDrift(clean()).summary)).toBe(
      driftFingerprint(compareAppDrift({ ...clean(), release: null }).summary),
    );
  });
});

const spec = (over: Record<string, unknown>): Infraspec => {
  const parsed = parseInfraspec({
    name: 'shop',
    repo: { url: 'https://example.test/shop.git' },
    processes: {
      web: { port: 8080, replicas: 2 },
      tick: { schedule: '0 3 * * *', command: 'true' },
      off: { schedule: '0 4 * * *', command: 'true', replicas: 0 },
    },
    ...over,
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.spec;
};

describe('expectedOf', () => {
  it.each([
    ['docker', { tick: 'shop.tick' }],
    ['nomad', { tick: 'shop-tick' }],
  ] as const)(
    '%s: long-running processes by replicas, schedules by the target’s id, none for 0 replicas',
    (target, schedules) => {
      expect(expectedOf({ id: 3, imageRef: IMAGE }, spec({}), 'shop', target)).toEqual({
        id: 3,
        imageRef: IMAGE,
        processes: { web: { replicas: 2 } },
        schedules,
        served: { web: 8080 },
      });
    },
  );

  it('kubernetes: a CronJob per scheduled process, also with 0 replicas, named as the target names it', () => {
    const { schedules } = expectedOf({ id: 3, imageRef: IMAGE }, spec({}), 'shop', 'kubernetes');
    expect(Object.keys(schedules).sort()).toEqual(['off', 'tick']);
    expect(schedules.tick).toMatch(/^shop-tick-[0-9a-f]{5}$/);
  });
});

describe('compareAppDrift: the ingress proxy (docker)', () => {
  const served: AppDriftRelease = { ...RELEASE, served: { web: 8080 } };
  /** web's two replicas on ports of their own, both in its route on 8080. */
  const routed = (
    proxy: Record<string, { listenPort: number; upstreams: number[] }> = {
      web: { listenPort: 8080, upstreams: [20001, 20002] },
    },
    edit: (units: LiveUnit[]) => LiveUnit[] = (us) => us,
  ): AppDriftInput => ({
    app: 'shop',
    release: served,
    live: {
      units: edit([
        unit('web', 0, { port: 20001 }),
        unit('web', 1, { port: 20002 }),
        unit('worker', 0),
      ]),
      schedules: ['shop.tick'],
      proxy,
    },
  });

  it.each<Case>([
    {
      rule: 'a route to every running replica, on the served port, is not drift',
      input: routed(),
      byAction: {},
      details: [],
    },
    {
      rule: 'a served process without its route is created: nothing answers on its port',
      input: routed({}),
      byAction: { create: ['proxy.web'] },
      details: ['proxy route of web: missing, so nothing answers on port 8080'],
    },
    {
      rule: 'a route on another port is updated',
      input: routed({ web: { listenPort: 9090, upstreams: [20001, 20002] } }),
      byAction: { update: ['proxy.web'] },
      details: ['proxy route of web: listens on port 9090, release 8 serves it on 8080'],
    },
    {
      rule: 'a route that leaves out a running replica is updated, naming the replica',
      input: routed({ web: { listenPort: 8080, upstreams: [20001] } }),
      byAction: { update: ['proxy.web'] },
      details: ['proxy route of web: leaves out web[1] (port 20002), which gets no traffic'],
    },
    {
      rule: 'an upstream with no replica behind it is not told again: the replica is',
      input: routed(undefined, (us) => us.filter((u) => u.name !== 'norn.shop.web.1')),
      byAction: { create: ['process.web[1]'] },
      details: ['web[1]: missing'],
    },
    {
      rule: 'a stopped replica left out of the route is its replace only',
      input: routed({ web: { listenPort: 8080, upstreams: [20001] } }, (us) =>
        us.map((u) => (u.name === 'norn.shop.web.1' ? { ...u, running: false } : u)),
      ),
      byAction: { replace: ['process.web[1]'] },
      details: ['web[1]: not running'],
    },
    {
      rule: 'a route of a process the release does not serve is deleted',
      input: routed({
        web: { listenPort: 8080, upstreams: [20001, 20002] },
        admin: { listenPort: 8081, upstreams: [20003] },
      }),
      byAction: { delete: ['proxy.admin'] },
      details: ['proxy route of admin (port 8081): release 8 serves no process admin'],
    },
    {
      rule: 'targets without norn’s proxy (no routes read) are not checked for it',
      input: { ...routed(), live: { ...routed().live, proxy: undefined } },
      byAction: {},
      details: [],
    },
  ])('$rule', expectFinding);
});

describe('expectedRouteKeys', () => {
  it('one key per endpoint: host name, and path when it has one', () => {
    const keys = expectedRouteKeys(
      spec({
        endpoints: [{ url: 'Shop.Example.test' }, { url: 'https://api.example.test/v1' }],
      }),
    );
    expect(keys).toEqual(['shop.example.test', 'api.example.test[^/v1]']);
    expect(routeKey({ hostname: 'api.example.test', path: '^/v1' })).toBe(keys[1]);
  });

  it('none without endpoints, as forge writes none then', () => {
    expect(expectedRouteKeys(spec({ hosts: { external: 'shop.example.test' } }))).toEqual([]);
  });
});
