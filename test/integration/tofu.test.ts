/**
 * norn's OpenTofu driver against a tofu binary: the stand-in (test/support/tofu/tofu) always,
 * and real OpenTofu too when `which tofu` finds one. Configurations are *.tf.json of
 * hashicorp/local's local_file, so the files they manage are the "infrastructure".
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import {
  createTofu,
  driftFingerprint,
  planSummary,
  sha256File,
  type Tofu,
  type TofuOptions,
} from '../../src/gitops/tofu.js';

const STANDIN = fileURLToPath(new URL('../support/tofu/tofu', import.meta.url));
const which = spawnSync('which', ['tofu'], { encoding: 'utf8' });
const REAL = which.status === 0 ? which.stdout.trim() : undefined;

interface Binary {
  name: string;
  bin: string | undefined;
  /** Has TOFU_STANDIN_HOLD_MS, the hook that holds the lock mid-operation. */
  hooks: boolean;
}
const BINARIES: Binary[] = [
  { name: 'the stand-in', bin: STANDIN, hooks: true },
  {
    name: REAL ? `real tofu (${REAL})` : 'real tofu (skipped: `which tofu` finds none)',
    bin: REAL,
    hooks: false,
  },
];

async function workdir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'norn-tofu-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

type Files = Record<string, { filename: string; content: string }>;
const config = (files: Files) => JSON.stringify({ resource: { local_file: files } }, null, 2);
const TWO: Files = {
  a: { filename: 'out/a.txt', content: 'alpha\n' },
  b: { filename: 'out/b.txt', content: 'beta\n' },
};

const lockInfo = (dir: string) => join(dir, '.terraform.tfstate.lock.info');
/** What norn writes into a stack's checkout so that its state outlives the checkout. */
const backendOverride = (path: string) =>
  JSON.stringify({ terraform: { backend: { local: { path } } } });

async function until(check: () => boolean, what: string, ms = 10_000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(BINARIES)('the OpenTofu driver against $name', ({ bin, hooks }) => {
  const make = (dir: string, extra: Partial<TofuOptions> = {}): Tofu =>
    createTofu({ bin, cwd: dir, ...extra });

  /** A directory with `files` as configuration, initialised. */
  async function ready(files: Files = TWO) {
    const dir = await workdir();
    await writeFile(join(dir, 'main.tf.json'), config(files));
    const tofu = make(dir);
    expect((await tofu.init()).ok).toBe(true);
    return { dir, tofu };
  }

  async function planned(tofu: Tofu, out = 'plan.bin') {
    const plan = await tofu.plan({ out, detailedExitcode: true });
    return { plan, summary: planSummary(await tofu.show(out)) };
  }

  describe.skipIf(!bin)('init, validate, fmt, plan, show, apply', () => {
    it('initialises and validates a good configuration', async () => {
      const { tofu } = await ready();
      const dir2 = await workdir();
      await writeFile(join(dir2, 'main.tf.json'), config(TWO));
      const init = await make(dir2).init();
      expect(init.output).toMatch(/OpenTofu has been successfully initialized!/);
      expect(existsSync(join(dir2, '.terraform.lock.hcl'))).toBe(true);
      expect(await tofu.validate()).toEqual({
        valid: true,
        errorCount: 0,
        warningCount: 0,
        diagnostics: [],
      });
    });

    it('refuses a bad configuration with diagnostics naming what and where', async () => {
      const { dir, tofu } = await ready();
      await writeFile(
        join(dir, 'main.tf.json'),
        '{\n  "resource": {\n    "local_file": {\n      "a": { "content": "x", "colour": "red" }\n    },\n    "local_nope": { "b": {} }\n  }\n}\n',
      );
      const result = await tofu.validate();
      expect(result.valid).toBe(false);
      const summaries = result.diagnostics.map((d) => d.summary);
      expect(summaries).toEqual(
        expect.arrayContaining([
          'Extraneous JSON object property',
          'Missing required argument',
          'Invalid resource type',
        ]),
      );
      // JSON syntax: an unknown argument is an extraneous property (Terraform 1.11.4 says so too).
      const unsupported = result.diagnostics.find(
        (d) => d.summary === 'Extraneous JSON object property',
      );
      expect(unsupported).toMatchObject({
        severity: 'error',
        detail: 'No argument or block type is named "colour".',
        range: { filename: 'main.tf.json', start: { line: 4 } },
      });
      expect(result.errorCount).toBe(result.diagnostics.length);
    });

    it('says validate needs init first, and init refuses invalid JSON naming file and line', async () => {
      const dir = await workdir();
      await writeFile(join(dir, 'main.tf.json'), config(TWO));
      const before = await make(dir).validate();
      expect(before.valid).toBe(false);
      expect(before.diagnostics[0]?.summary).toBe('Missing required provider');

      await writeFile(join(dir, 'main.tf.json'), '{\n  "resource": {\n');
      const init = await make(dir).init();
      expect(init.ok).toBe(false);
      expect(init.output).toMatch(/Error: /);
      expect(init.output).toMatch(/on main\.tf\.json line \d+/);
    });

    it('finds nothing to format in JSON configuration, which tofu fmt leaves alone', async () => {
      const { dir, tofu } = await ready();
      await writeFile(
        join(dir, 'ugly.tf.json'),
        '{"resource":{"local_file":{"u":{"filename":"u","content":"u"}}}}',
      );
      expect(await tofu.fmtCheck()).toEqual({ ok: true, files: [] });
      await writeFile(join(dir, 'native.tf'), 'resource "local_file" "n" {\nfilename="n"\n}\n');
      if (hooks) {
        // The stand-in has no HCL: it refuses native syntax instead of pretending to check it.
        await expect(tofu.fmtCheck()).rejects.toThrow(/native syntax/i);
      } else {
        expect(await tofu.fmtCheck()).toEqual({ ok: false, files: ['native.tf'] });
      }
    });

    it('plans a new configuration: 2 to add, exit 2, and show -json agrees', async () => {
      const { tofu } = await ready();
      const { plan, summary } = await planned(tofu);
      expect(plan).toMatchObject({ exitCode: 2, changes: true, locked: false });
      expect(plan.output).toContain('Plan: 2 to add, 0 to change, 0 to destroy.');
      expect(summary).toEqual({
        add: 2,
        change: 0,
        destroy: 0,
        byAction: { create: ['local_file.a', 'local_file.b'], update: [], delete: [], replace: [] },
      });
      const shown = await tofu.show('plan.bin');
      expect(shown.prior_state).toBeUndefined(); // no state yet
      expect(shown.resource_changes?.[0]?.change).toMatchObject({
        actions: ['create'],
        before: null,
        after: { filename: 'out/a.txt', content: 'alpha\n' },
        after_unknown: { id: true },
      });
      expect(await tofu.plan({ out: 'quiet.bin' })).toMatchObject({
        exitCode: 0,
        changes: undefined,
      });
    });

    it('applies the saved plan, creating the files; then there are no changes (exit 0)', async () => {
      const { dir, tofu } = await ready();
      await tofu.plan({ out: 'plan.bin', detailedExitcode: true });
      const applied = await tofu.apply('plan.bin');
      expect(applied).toMatchObject({ ok: true, stale: false, locked: false });
      expect(await readFile(join(dir, 'out/a.txt'), 'utf8')).toBe('alpha\n');
      expect(await readFile(join(dir, 'out/b.txt'), 'utf8')).toBe('beta\n');
      const state = JSON.parse(await readFile(join(dir, 'terraform.tfstate'), 'utf8'));
      expect(state).toMatchObject({
        version: 4,
        serial: expect.any(Number),
        lineage: expect.any(String),
      });
      // local_file's id is the sha1 of its content, as in hashicorp/local.
      const { createHash } = await import('node:crypto');
      const a = state.resources.find((r: { name: string }) => r.name === 'a');
      expect(a.instances[0].attributes.id).toBe(createHash('sha1').update('alpha\n').digest('hex'));

      const again = await tofu.plan({ out: 'again.bin', detailedExitcode: true });
      expect(again).toMatchObject({ exitCode: 0, changes: false });
      expect(again.output).toContain('No changes. Your infrastructure matches the configuration.');
      expect(planSummary(await tofu.show('again.bin'))).toMatchObject({
        add: 0,
        change: 0,
        destroy: 0,
      });
    });

    it('reports a hand-edited file as drift (exit 2) with the same fingerprint on every check', async () => {
      const { dir, tofu } = await ready();
      await tofu.plan({ out: 'plan.bin' });
      expect((await tofu.apply('plan.bin')).ok).toBe(true);
      const clean = driftFingerprint((await planned(tofu, 'clean.bin')).summary);

      await writeFile(join(dir, 'out/b.txt'), 'edited by hand\n');
      const first = await planned(tofu, 'drift1.bin');
      expect(first.plan).toMatchObject({ exitCode: 2, changes: true });
      // hashicorp/local's Read drops a file whose sha1 is not its id: refresh sees it deleted and
      // the plan creates it again (it is not an update in place).
      expect(first.summary.byAction).toEqual({
        create: ['local_file.b'],
        update: [],
        delete: [],
        replace: [],
      });
      const shown = await tofu.show('drift1.bin');
      expect(shown.resource_drift?.map((d) => [d.address, d.change.actions])).toEqual([
        ['local_file.b', ['delete']],
      ]);
      expect(first.plan.output).toContain('Objects have changed outside of OpenTofu');

      const second = await planned(tofu, 'drift2.bin');
      expect(driftFingerprint(second.summary)).toBe(driftFingerprint(first.summary));
      expect(driftFingerprint(first.summary)).not.toBe(clean);
    });

    it('replaces a file whose content the configuration changes (every argument forces replacement)', async () => {
      const { dir, tofu } = await ready();
      await tofu.plan({ out: 'plan.bin' });
      await tofu.apply('plan.bin');
      await writeFile(
        join(dir, 'main.tf.json'),
        config({ ...TWO, a: { filename: 'out/a.txt', content: 'ALPHA\n' } }),
      );
      const { plan, summary } = await planned(tofu, 'replace.bin');
      expect(plan.exitCode).toBe(2);
      expect(plan.output).toContain('Plan: 1 to add, 0 to change, 1 to destroy.');
      expect(summary).toMatchObject({
        add: 1,
        change: 0,
        destroy: 1,
        byAction: { replace: ['local_file.a'] },
      });
      const shown = await tofu.show('replace.bin');
      const a = shown.resource_changes?.find((c) => c.address === 'local_file.a');
      expect(a?.change.actions).toEqual(['delete', 'create']);
      expect((await tofu.apply('replace.bin')).ok).toBe(true);
      expect(await readFile(join(dir, 'out/a.txt'), 'utf8')).toBe('ALPHA\n');
    });

    it('exits 1 on an invalid configuration, which is an error and never drift', async () => {
      const { dir, tofu } = await ready();
      await writeFile(
        join(dir, 'main.tf.json'),
        config({ a: { filename: 'x', content: 'x', mode: '1' } as never }),
      );
      const plan = await tofu.plan({ out: 'plan.bin', detailedExitcode: true });
      expect(plan).toMatchObject({ exitCode: 1, changes: undefined, locked: false });
      expect(plan.output).toMatch(/Error: Extraneous JSON object property/);
      expect(existsSync(join(dir, 'plan.bin'))).toBe(false);
    });

    it('refuses a saved plan made stale by another apply', async () => {
      const { dir, tofu } = await ready();
      await tofu.plan({ out: 'first.bin' });
      await tofu.plan({ out: 'second.bin' });
      const second = await sha256File(join(dir, 'second.bin'));
      expect((await tofu.apply('second.bin')).ok).toBe(true);
      expect(await sha256File(join(dir, 'second.bin'))).toBe(second); // apply leaves the plan be
      await rm(join(dir, 'out/a.txt'));

      const stale = await tofu.apply('first.bin');
      expect(stale).toMatchObject({ ok: false, stale: true, locked: false });
      expect(stale.output).toContain('Saved plan is stale');
      expect(existsSync(join(dir, 'out/a.txt'))).toBe(false); // nothing of it was applied
    });

    it.skipIf(!hooks)(
      'refuses to plan while an apply holds the state lock, unless -lock=false',
      async () => {
        const { dir, tofu } = await ready();
        await tofu.plan({ out: 'plan.bin' });
        const holder = make(dir, { env: { ...process.env, TOFU_STANDIN_HOLD_MS: '4000' } });
        const applying = holder.apply('plan.bin');
        await until(() => existsSync(lockInfo(dir)), 'the lock info file');
        const info = JSON.parse(await readFile(lockInfo(dir), 'utf8'));
        expect(info).toMatchObject({ Operation: 'OperationTypeApply', Path: 'terraform.tfstate' });

        const refused = await tofu.plan({ out: 'p2.bin', detailedExitcode: true });
        expect(refused).toMatchObject({ exitCode: 1, changes: undefined, locked: true });
        expect(refused.output).toContain('Error acquiring the state lock');
        expect(refused.output).toContain(`\n  ID:        ${info.ID}\n`);
        const unlocked = await tofu.plan({ out: 'p3.bin', detailedExitcode: true, lock: false });
        expect(unlocked.locked).toBe(false);
        expect([0, 2]).toContain(unlocked.exitCode);

        expect(await applying).toMatchObject({ ok: true });
        expect(existsSync(lockInfo(dir))).toBe(false);
      },
    );

    it.skipIf(!hooks)(
      'a cancelled apply stops mid-way: the lock is released and the rest is still planned',
      async () => {
        const { dir, tofu } = await ready();
        await tofu.plan({ out: 'plan.bin' });
        const abort = new AbortController();
        const holder = make(dir, {
          signal: abort.signal,
          env: { ...process.env, TOFU_STANDIN_HOLD_MS: '20000' },
        });
        const applying = holder.apply('plan.bin');
        await until(() => existsSync(join(dir, 'out/a.txt')), 'the first file');
        abort.abort('test');
        await expect(applying).rejects.toMatchObject({ code: 'CANCELLED' });
        expect(existsSync(lockInfo(dir))).toBe(false); // SIGTERM: tofu unlocks before it exits
        expect(existsSync(join(dir, 'out/b.txt'))).toBe(false);
        const next = await planned(tofu, 'next.bin');
        expect(next.plan.locked).toBe(false);
        expect(next.summary.byAction.create).toEqual(['local_file.b']);
      },
    );

    it.skipIf(!hooks)(
      'a lock whose holder was killed (SIGKILL) is free, as an fcntl lock would be',
      async () => {
        const { dir, tofu } = await ready();
        const child = spawn(bin!, ['plan', '-input=false', '-no-color'], {
          cwd: dir,
          env: { ...process.env, TOFU_STANDIN_HOLD_MS: '20000' },
          stdio: 'ignore',
        });
        await until(() => existsSync(lockInfo(dir)), 'the lock info file');
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
        expect(existsSync(lockInfo(dir))).toBe(true); // left behind, as by a killed tofu
        expect(await tofu.plan({ out: 'p.bin', detailedExitcode: true })).toMatchObject({
          exitCode: 2,
          locked: false,
        });
      },
    );
  });

  describe.skipIf(!bin)('the local backend, set by an override file as norn sets it', () => {
    /**
     * Two fresh checkouts of one stack, each initialised, whose norn_override.tf.json puts the
     * state at the same path outside both (in a directory that does not exist yet). The files
     * are absolute so both checkouts manage the same ones.
     */
    async function checkouts() {
      const shared = await workdir();
      const statePath = join(shared, 'state', 'stack', 'terraform.tfstate');
      const files: Files = {
        a: { filename: join(shared, 'out/a.txt'), content: 'alpha\n' },
        b: { filename: join(shared, 'out/b.txt'), content: 'beta\n' },
      };
      const checkout = async () => {
        const dir = await workdir();
        await writeFile(join(dir, 'main.tf.json'), config(files));
        await writeFile(join(dir, 'norn_override.tf.json'), backendOverride(statePath));
        const tofu = make(dir);
        const init = await tofu.init();
        expect(init.ok).toBe(true);
        expect(init.output).toContain('Successfully configured the backend "local"!');
        return { dir, tofu };
      };
      return { shared, statePath, files, a: await checkout(), b: await checkout() };
    }

    it("keeps the state at the backend path, so a second checkout sees the first one's apply", async () => {
      const { statePath, files, a, b } = await checkouts();
      await a.tofu.plan({ out: 'plan.bin' });
      expect(await a.tofu.apply('plan.bin')).toMatchObject({ ok: true });
      expect(JSON.parse(await readFile(statePath, 'utf8'))).toMatchObject({ version: 4 });
      expect(existsSync(join(a.dir, 'terraform.tfstate'))).toBe(false);

      const other = await b.tofu.plan({ out: 'plan.bin', detailedExitcode: true });
      expect(other).toMatchObject({ exitCode: 0, changes: false });
      expect(other.output).toContain('No changes. Your infrastructure matches the configuration.');

      // The second checkout changes b: the previous snapshot is kept beside the state.
      await writeFile(
        join(b.dir, 'main.tf.json'),
        config({ ...files, b: { filename: files.b!.filename, content: 'BETA\n' } }),
      );
      const { summary } = await planned(b.tofu, 'change.bin');
      expect(summary.byAction.replace).toEqual(['local_file.b']);
      expect(await b.tofu.apply('change.bin')).toMatchObject({ ok: true });
      expect(existsSync(`${statePath}.backup`)).toBe(true);
      for (const dir of [a.dir, b.dir])
        expect(existsSync(join(dir, 'terraform.tfstate.backup'))).toBe(false);
      expect((await a.tofu.plan({ out: 'back.bin', detailedExitcode: true })).changes).toBe(true);
    });

    it('refuses a plan saved in one checkout once the other has applied', async () => {
      const { files, a, b } = await checkouts();
      await a.tofu.plan({ out: 'a.bin' });
      await b.tofu.plan({ out: 'b.bin' });
      expect(await b.tofu.apply('b.bin')).toMatchObject({ ok: true, stale: false });
      await rm(files.a!.filename);

      const stale = await a.tofu.apply('a.bin');
      expect(stale).toMatchObject({ ok: false, stale: true, locked: false });
      expect(stale.output).toContain('Saved plan is stale');
      expect(existsSync(files.a!.filename)).toBe(false); // nothing of it was applied
    });

    it('applies from one checkout a plan saved by the other, by absolute path', async () => {
      const { shared, statePath, files, a, b } = await checkouts();
      const saved = join(shared, 'review.bin'); // e.g. an artifact the release run fetched
      expect(await a.tofu.plan({ out: saved, detailedExitcode: true })).toMatchObject({
        exitCode: 2,
      });
      expect(await b.tofu.apply(saved)).toMatchObject({ ok: true });
      expect(await readFile(files.a!.filename, 'utf8')).toBe('alpha\n');
      expect(existsSync(statePath)).toBe(true);
      expect((await a.tofu.plan({ out: 'after.bin', detailedExitcode: true })).changes).toBe(false);
    });

    it.skipIf(!hooks)(
      'an apply in one checkout holds the lock beside the state: a plan in the other is refused',
      async () => {
        const { statePath, a, b } = await checkouts();
        await a.tofu.plan({ out: 'plan.bin' });
        const holder = make(a.dir, { env: { ...process.env, TOFU_STANDIN_HOLD_MS: '4000' } });
        const applying = holder.apply('plan.bin');
        const info = join(dirname(statePath), '.terraform.tfstate.lock.info');
        await until(() => existsSync(info), 'the lock info file beside the state');
        const held = JSON.parse(await readFile(info, 'utf8'));
        expect(held).toMatchObject({ Operation: 'OperationTypeApply', Path: statePath });
        expect(existsSync(lockInfo(a.dir))).toBe(false);

        const refused = await b.tofu.plan({ out: 'p.bin', detailedExitcode: true });
        expect(refused).toMatchObject({ exitCode: 1, changes: undefined, locked: true });
        expect(refused.output).toContain('Error acquiring the state lock');
        expect(refused.output).toContain(`\n  ID:        ${held.ID}\n`);
        expect(refused.output).toContain(`\n  Path:      ${statePath}\n`);

        expect(await applying).toMatchObject({ ok: true });
        expect(existsSync(info)).toBe(false);
        expect((await b.tofu.plan({ out: 'p.bin', detailedExitcode: true })).exitCode).toBe(0);
      },
    );

    it('refuses a backend type it does not have, and a second backend block', async () => {
      const dir = await workdir();
      const withBackend = (backend: object) =>
        JSON.stringify({ terraform: { backend }, resource: { local_file: TWO } }, null, 2);
      await writeFile(join(dir, 'main.tf.json'), withBackend({ nosuch: {} }));
      const unknown = await make(dir).init();
      expect(unknown.ok).toBe(false);
      expect(unknown.output).toContain('Error: Unsupported backend type');
      expect(unknown.output).toContain('There is no backend type named "nosuch".');
      if (hooks) {
        // A real backend the stand-in does not have is refused, not ignored.
        await writeFile(join(dir, 'main.tf.json'), withBackend({ s3: { bucket: 'b' } }));
        const s3 = await make(dir).init();
        expect(s3.ok).toBe(false);
        expect(s3.output).toContain('Error: Unsupported setting (tofu stand-in)');
        expect(s3.output).toMatch(/backend "s3" is\s+not\s+supported/);
      }

      await writeFile(join(dir, 'main.tf.json'), withBackend({ local: {} }));
      await writeFile(join(dir, 'second.tf.json'), backendOverride('other.tfstate'));
      const twice = await make(dir).init();
      expect(twice.ok).toBe(false);
      expect(twice.output).toContain('Error: Duplicate backend configuration');
      expect(twice.output).toMatch(/on second\.tf\.json line 1/);
    });

    it("takes the override file's backend over the primary files' one", async () => {
      const dir = await workdir();
      const state = join(await workdir(), 'override.tfstate');
      await writeFile(
        join(dir, 'main.tf.json'),
        JSON.stringify({
          terraform: { backend: { local: { path: 'primary.tfstate' } } },
          resource: { local_file: TWO },
        }),
      );
      await writeFile(join(dir, 'norn_override.tf.json'), backendOverride(state));
      const tofu = make(dir);
      expect((await tofu.init()).ok).toBe(true);
      await tofu.plan({ out: 'plan.bin' });
      expect((await tofu.apply('plan.bin')).ok).toBe(true);
      expect(existsSync(state)).toBe(true);
      expect(existsSync(join(dir, 'primary.tfstate'))).toBe(false);
      expect(existsSync(join(dir, 'terraform.tfstate'))).toBe(false);
    });

    it('asks for init again when the backend path changes after init', async () => {
      const { a } = await checkouts();
      await writeFile(
        join(a.dir, 'norn_override.tf.json'),
        backendOverride(join(await workdir(), 'moved.tfstate')),
      );
      const plan = await a.tofu.plan({ out: 'plan.bin', detailedExitcode: true });
      expect(plan).toMatchObject({ exitCode: 1, locked: false });
      expect(plan.output).toContain('Backend initialization required');
      expect(plan.output).toContain('Backend configuration block has changed');
      const init = await a.tofu.init(); // neither -reconfigure nor -migrate-state
      expect(init.ok).toBe(false);
      expect(init.output).toContain('Error: Backend configuration changed');
    });

    it("merges an override file's arguments into a resource, and refuses one with no base", async () => {
      const { dir, tofu } = await ready();
      await writeFile(
        join(dir, 'content_override.tf.json'),
        JSON.stringify({ resource: { local_file: { a: { content: 'ALPHA\n' } } } }),
      );
      await tofu.plan({ out: 'plan.bin' });
      const a = (await tofu.show('plan.bin')).resource_changes?.find(
        (c) => c.address === 'local_file.a',
      );
      expect(a?.change.after).toMatchObject({ filename: 'out/a.txt', content: 'ALPHA\n' });

      await writeFile(
        join(dir, 'content_override.tf.json'),
        JSON.stringify({ resource: { local_file: { zz: { content: 'z' } } } }),
      );
      const result = await tofu.validate();
      expect(result.valid).toBe(false);
      expect(result.diagnostics).toEqual([
        expect.objectContaining({
          summary: 'Missing resource to override',
          detail:
            'There is no local_file resource named "zz". An override file can only override a resource block defined in a primary configuration file.',
          range: expect.objectContaining({ filename: 'content_override.tf.json' }),
        }),
      ]);
    });
  });
});

describe('the OpenTofu driver, whatever the binary', () => {
  it('says tofu is unavailable, naming NORN_TOFU_BIN, when the binary is missing', async () => {
    const dir = await workdir();
    const err = await createTofu({ bin: join(dir, 'no-such-tofu'), cwd: dir })
      .init()
      .catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/NORN_TOFU_BIN/);
  });

  it('reads fmt -check exit 3 as the list of files to format (command/fmt.go)', async () => {
    const dir = await workdir();
    const fake = join(dir, 'tofu');
    // What real tofu prints for two unformatted native files; the stand-in never formats.
    await writeFile(fake, '#!/bin/sh\nprintf "main.tf\\nmodules/net/vars.tf\\n"\nexit 3\n');
    await chmod(fake, 0o755);
    expect(await createTofu({ bin: fake, cwd: dir }).fmtCheck()).toEqual({
      ok: false,
      files: ['main.tf', 'modules/net/vars.tf'],
    });
  });
});

// Real Terraform, when installed, checks the driver against a real binary's output without any
// download: terraform_data and the local-exec provisioner are built in. (OpenTofu keeps the same
// CLI contract; its wording says "OpenTofu" where Terraform's says "Terraform".)
const whichTerraform = spawnSync('which', ['terraform'], { encoding: 'utf8' });
const TERRAFORM = whichTerraform.status === 0 ? whichTerraform.stdout.trim() : undefined;

describe.skipIf(!TERRAFORM)(
  `the driver against real Terraform (${TERRAFORM ?? 'none on PATH'})`,
  () => {
    const env = { ...process.env, CHECKPOINT_DISABLE: '1' }; // no version check over the network
    const data = (input: string, extra: object = {}) =>
      JSON.stringify({ resource: { terraform_data: { a: { input, ...extra } } } });

    async function ready(input = 'x', extra: object = {}) {
      const dir = await workdir();
      await writeFile(join(dir, 'main.tf.json'), data(input, extra));
      const tofu = createTofu({ bin: TERRAFORM, cwd: dir, env });
      expect((await tofu.init()).ok).toBe(true);
      return { dir, tofu };
    }

    it('plans, shows, applies, finds no changes, and refuses a stale plan', async () => {
      const { tofu } = await ready();
      expect((await tofu.validate()).valid).toBe(true);
      const plan = await tofu.plan({ out: 'first.bin', detailedExitcode: true });
      expect(plan).toMatchObject({ exitCode: 2, changes: true, locked: false });
      expect(plan.output).toContain('Plan: 1 to add, 0 to change, 0 to destroy.');
      expect(planSummary(await tofu.show('first.bin')).byAction.create).toEqual([
        'terraform_data.a',
      ]);
      await tofu.plan({ out: 'second.bin' });
      expect(await tofu.apply('first.bin')).toMatchObject({ ok: true, stale: false });
      expect(await tofu.plan({ out: 'none.bin', detailedExitcode: true })).toMatchObject({
        exitCode: 0,
        changes: false,
      });
      const stale = await tofu.apply('second.bin');
      expect(stale).toMatchObject({ ok: false, stale: true, locked: false });
    });

    it('counts a replacement as tofu does, and exits 1 on an invalid configuration', async () => {
      const { dir, tofu } = await ready('x', { triggers_replace: 'one' });
      await tofu.plan({ out: 'p.bin' });
      await tofu.apply('p.bin');
      await writeFile(join(dir, 'main.tf.json'), data('x', { triggers_replace: 'two' }));
      const { add, destroy, byAction } = planSummary(
        (await tofu.plan({ out: 'r.bin', detailedExitcode: true })) && (await tofu.show('r.bin')),
      );
      expect({ add, destroy, replace: byAction.replace }).toEqual({
        add: 1,
        destroy: 1,
        replace: ['terraform_data.a'],
      });
      await writeFile(join(dir, 'main.tf.json'), data('x', { colour: 'red' }));
      expect(await tofu.plan({ out: 'bad.bin', detailedExitcode: true })).toMatchObject({
        exitCode: 1,
        changes: undefined,
      });
      expect((await tofu.validate()).diagnostics.map((d) => d.summary)).toContain(
        'Extraneous JSON object property',
      );
    });

    it('sees a held state lock as locked, and -lock=false plans past it', async () => {
      // A create runs the provisioner: the apply holds the lock while it sleeps.
      const sleeper = {
        triggers_replace: 'now',
        provisioner: { 'local-exec': { command: 'sleep 4' } },
      };
      const { dir, tofu } = await ready('x', sleeper);
      await tofu.plan({ out: 'p.bin' });
      const applying = tofu.apply('p.bin');
      await until(() => existsSync(lockInfo(dir)), 'the lock info file');
      const refused = await tofu.plan({ out: 'q.bin', detailedExitcode: true });
      expect(refused).toMatchObject({ exitCode: 1, locked: true });
      expect(refused.output).toContain('Error acquiring the state lock');
      expect((await tofu.plan({ out: 'r.bin', lock: false })).locked).toBe(false);
      expect((await applying).ok).toBe(true);
    });
  },
);
