/**
 * The contract every target keeps (src/targets/types.ts), as vitest cases: a target's test file
 * calls `targetContract(name, makeFixture)` and the same cases run against its engine. What is
 * engine-specific (images, ports, planting another app's object) comes from the fixture.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNornError } from '../../../src/shared/errors.js';
import { parseInfraspec, type Infraspec } from '../../../src/shared/spec/infraspec.js';
import type {
  Target,
  TargetCall,
  TargetProgress,
  TargetRelease,
} from '../../../src/targets/index.js';

export interface TargetFixture {
  target: Target;
  /**
   * Two release images: each serves its name (`v1`, `v2`) on `/` and 200 on `/healthz` at $PORT
   * once it started, and stops at once on TERM.
   */
  images: { v1: string; v2: string };
  /** A base port P with P..P+count-1 free where the target's processes listen. */
  freePorts(count: number): Promise<number>;
  /** GET http://host:port/ from where the target routes from → trimmed body, or `down`. */
  fetchBody(address: { host: string; port: number }): Promise<string>;
  /**
   * Puts an object belonging to app `owner` where replica 0 of `app`'s `process` goes; returns
   * a check that it is still there, unchanged.
   */
  plantForeign(app: string, process: string, owner: string): Promise<() => Promise<boolean>>;
  /** Removes whatever the file's apps and planted objects left. */
  close(apps: string[]): Promise<void>;
  /**
   * Whether `apply` returns with the release running (docker starts and checks each replica) or
   * hands the rollout to the engine (kubernetes writes Deployments; the cluster rolls them out).
   * When it hands it over, the cases wait for it with `waitHealthy` before looking at what runs.
   */
  rollsOutInApply: boolean;
}

const call = (): TargetCall => ({ signal: AbortSignal.timeout(60_000), log: () => {}, redact: [] });

function webSpec(app: string, port: number, replicas: number): Infraspec {
  const parsed = parseInfraspec({
    name: app,
    processes: { web: { port, replicas, health: { path: '/healthz', timeout: '1s' } } },
    deployPolicy: { minHealthyTime: '1s', healthTimeout: '20s' },
  });
  if (!parsed.ok) throw new Error(`test spec invalid: ${JSON.stringify(parsed.problems)}`);
  return parsed.spec;
}

let nextId = 1_000_000 + Math.floor(Math.random() * 1_000_000);

export function targetContract(name: string, makeFixture: () => Promise<TargetFixture>): void {
  describe(`target ${name}: the contract`, () => {
    let f: TargetFixture;
    const apps: string[] = [];
    const newApp = (base: string) => {
      const app = `${base}-${randomBytes(3).toString('hex')}`;
      apps.push(app);
      return app;
    };
    /** A release of `app` on `image`; each gets an id of its own. */
    const release = (app: string, image: 'v1' | 'v2', spec: Infraspec): TargetRelease => {
      const id = nextId++;
      return { app, id, deploymentId: `d${id}`, imageRef: f.images[image], spec, secrets: {} };
    };
    /** What the app's web process serves; `down` too when its target has no address for it. */
    const served = async (app: string, spec: Infraspec) => {
      const address = await f.target.address(app, 'web', spec).catch((err: unknown) => {
        if (isNornError(err) && err.code === 'NOT_FOUND') return undefined; // nomad: no instance
        throw err;
      });
      return address ? f.fetchBody(address) : 'down';
    };
    /** Once `r` runs: at once where apply rolls out, else when waitHealthy says so. */
    const rolledOut = async (r: TargetRelease) => {
      if (f.rollsOutInApply) return;
      expect(await f.target.waitHealthy(r, call())).toMatchObject({ ok: true });
    };

    beforeAll(async () => {
      f = await makeFixture();
    }, 180_000);
    afterAll(async () => {
      await f?.close(apps);
    }, 60_000);

    it('applies a release and reads it back', async () => {
      const app = newApp('tc-apply');
      const spec = webSpec(app, await f.freePorts(2), 2);
      const r1 = release(app, 'v1', spec);
      let touched = false;
      const applied = await f.target.apply(r1, { ...call(), onTouch: () => (touched = true) });
      expect(touched).toBe(true);
      expect(applied.units).toHaveLength(2);
      expect(applied.schedules).toEqual([]);
      await rolledOut(r1);
      const live = await f.target.live(app);
      expect(live.units.map((u) => u.name).sort()).toEqual([...applied.units].sort());
      for (const u of live.units)
        expect(u).toMatchObject({ process: 'web', releaseId: r1.id, running: true });
      expect(live.units.map((u) => u.replica).sort()).toEqual([0, 1]);
      expect(await served(app, spec)).toBe('v1');
      // Idempotent: the same release again keeps what is already right.
      expect((await f.target.apply(r1, call())).units).toEqual(applied.units);
    }, 60_000);

    it('waits until the release is healthy, reporting progress', async () => {
      const app = newApp('tc-health');
      const spec = webSpec(app, await f.freePorts(2), 2);
      const r1 = release(app, 'v1', spec);
      await f.target.apply(r1, call());
      const seen: TargetProgress[] = [];
      const verdict = await f.target.waitHealthy(r1, {
        ...call(),
        onProgress: (p) => seen.push(p),
      });
      expect(verdict).toMatchObject({ ok: true });
      expect(verdict.healthyForMs).toBeGreaterThanOrEqual(1_000);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.at(-1)).toMatchObject({ ready: 2, desired: 2 });
    }, 60_000);

    it('says why a release is not healthy, as a verdict', async () => {
      const app = newApp('tc-unhealthy');
      const spec = webSpec(app, await f.freePorts(1), 1);
      // Never put on: nothing of it runs, so the watch ends at healthTimeout with the reason.
      const short = { ...spec, deployPolicy: { ...spec.deployPolicy, healthTimeout: '1s' } };
      const seen: TargetProgress[] = [];
      const verdict = await f.target.waitHealthy(release(app, 'v1', short), {
        ...call(),
        onProgress: (p) => seen.push(p),
      });
      expect(verdict.ok).toBe(false);
      expect(verdict.problem).toBeTruthy();
      expect(seen.at(-1)).toMatchObject({ ready: 0, desired: 1 });
    }, 30_000);

    it('rolls back to the previous release, or removes a release that had none', async () => {
      const app = newApp('tc-rollback');
      const spec = webSpec(app, await f.freePorts(1), 1);
      const r1 = release(app, 'v1', spec);
      const r2 = release(app, 'v2', spec);
      await f.target.apply(r1, call());
      await f.target.apply(r2, call());
      await rolledOut(r2);
      expect(await served(app, spec)).toBe('v2');
      await f.target.rollBack({ app, failed: { id: r2.id }, previous: r1 }, call());
      await rolledOut(r1);
      expect((await f.target.live(app)).units.map((u) => u.releaseId)).toEqual([r1.id]);
      expect(await served(app, spec)).toBe('v1');

      const first = newApp('tc-rollback-first');
      const firstSpec = webSpec(first, await f.freePorts(1), 1);
      const only = release(first, 'v1', firstSpec);
      await f.target.apply(only, call());
      await f.target.rollBack({ app: first, failed: { id: only.id }, previous: null }, call());
      expect((await f.target.live(first)).units).toEqual([]);
    }, 90_000);

    it('says where a process can be reached, and refuses one it cannot address', async () => {
      const app = newApp('tc-address');
      const port = await f.freePorts(1);
      const spec = webSpec(app, port, 1);
      const r = release(app, 'v2', spec);
      await f.target.apply(r, call());
      await rolledOut(r);
      const address = await f.target.address(app, 'web', spec);
      expect(address.host).toBeTruthy();
      expect(await f.fetchBody(address)).toBe('v2');
      const err = await f.target.address(app, 'nope', spec).catch((e: unknown) => e);
      expect(isNornError(err) && err.code).toBe('NOT_FOUND');
    }, 60_000);

    it('removes the app, and removing it again is fine', async () => {
      const app = newApp('tc-remove');
      const spec = webSpec(app, await f.freePorts(2), 2);
      const applied = await f.target.apply(release(app, 'v1', spec), call());
      expect((await f.target.remove(app, call())).sort()).toEqual(
        expect.arrayContaining([...applied.units].sort()),
      );
      expect((await f.target.live(app)).units).toEqual([]);
      expect(await f.target.remove(app, call())).toEqual([]);
      expect(await served(app, spec)).toBe('down');
    }, 60_000);

    it('reads back nothing for an app it never ran', async () => {
      const { units, schedules, proxy = {} } = await f.target.live(newApp('tc-none'));
      expect({ units, schedules, proxy }).toEqual({ units: [], schedules: [], proxy: {} });
    });

    it('refuses to replace an object that belongs to another app, and leaves it alone', async () => {
      const app = newApp('tc-foreign');
      const other = newApp('tc-owner');
      const spec = webSpec(app, await f.freePorts(1), 1);
      const stillThere = await f.plantForeign(app, 'web', other);
      const err = await f.target.apply(release(app, 'v1', spec), call()).catch((e: unknown) => e);
      expect(isNornError(err) && err.code).toBe('CONFLICT');
      expect(String((err as Error).message)).toContain(other);
      expect(await stillThere()).toBe(true);
      expect(await f.target.remove(app, call())).toEqual([]);
      expect(await stillThere()).toBe(true);
    }, 60_000);
  });
}
