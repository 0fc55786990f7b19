/**
 * The stand-in's command line: fmt, init, validate, plan, show, apply and version, with Go-style
 * flags (`-name=value`, `-name value`, `-bool`, `-bool=false`; the first non-flag ends them).
 * Exit codes are OpenTofu's: fmt -check 3 when a file needs formatting and 2 on an error
 * (command/fmt.go); validate 1 when invalid (views/validate.go); plan -detailed-exitcode 0 / 1 / 2
 * (command/plan.go); everything else 0 or 1.
 *
 * Test hooks (environment):
 * - TOFU_STANDIN_HOLD_MS: plan sleeps this long right after taking the state lock; apply sleeps
 *   after its first change is applied and its state persisted (a "mid-apply" moment). SIGTERM
 *   during the sleep stops apply gracefully, as OpenTofu does: state of what was done is written
 *   and the lock released; SIGKILL leaves the lock info file behind (a dead holder's lock is free).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  configHash,
  decodeResource,
  isIgnoredFile,
  readModule,
  StandinRefusal,
  structure,
} from './config.mjs';
import { create, PROVIDER, PROVIDER_VERSION, remove } from './local-file.mjs';
import { makePlan, hasChanges, showJson, counts } from './plan.mjs';
import {
  LockError,
  lockState,
  nextState,
  readState,
  stateObjects,
  TOFU_VERSION,
  writeState,
} from './state.mjs';
import { diagText, lockErrorText, planText, wrap } from './render.mjs';

const out = (s) => process.stdout.write(s);
const errOut = (s) => process.stderr.write(s);

const FLAGS = {
  fmt: { bool: ['check', 'recursive', 'list', 'write', 'diff', 'no-color'], value: [] },
  init: {
    bool: ['input', 'no-color', 'upgrade', 'reconfigure', 'backend', 'get'],
    value: ['lockfile'],
  },
  validate: { bool: ['json', 'no-color'], value: [] },
  plan: {
    bool: ['input', 'detailed-exitcode', 'lock', 'no-color', 'refresh', 'compact-warnings'],
    value: ['out', 'lock-timeout'],
  },
  show: { bool: ['json', 'no-color'], value: [] },
  apply: {
    bool: ['input', 'lock', 'no-color', 'auto-approve', 'compact-warnings'],
    value: ['lock-timeout'],
  },
  version: { bool: ['json'], value: [] },
};

function parseFlags(command, argv) {
  const spec = FLAGS[command];
  const flags = {};
  let i = 0;
  for (; i < argv.length && argv[i].startsWith('-') && argv[i] !== '-'; i++) {
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(argv[i]);
    const [name, value] = [m[1], m[2]];
    if (spec.bool.includes(name))
      flags[name] = value === undefined ? true : /^(1|t|true)$/i.test(value);
    else if (spec.value.includes(name)) flags[name] = value ?? argv[++i];
    else throw new UsageError(`flag provided but not defined: -${name}`);
  }
  return { flags, args: argv.slice(i) };
}

class UsageError extends Error {}

const fail = (diags, sources) => {
  for (const d of diags) errOut(diagText(d, sources));
  return 1;
};
const sourcesOf = (files) => Object.fromEntries(files.map((f) => [f.name, f.src]));
const initialized = (dir) =>
  existsSync(join(dir, '.terraform', 'providers', ...PROVIDER.split('/')));
const NOT_INIT = {
  severity: 'error',
  summary: 'Inconsistent dependency lock file',
  detail: `The following dependency selections recorded in the lock file are inconsistent with the current configuration:\n  - provider ${PROVIDER}: required by this configuration but no version is selected\n\nTo make the initial dependency selections that will initialize the dependency lock file, run:\n  tofu init`,
};

/** Loads and checks the module; returns {files, resources, diags}. */
function load(dir) {
  const files = readModule(dir);
  const { resources, diags } = structure(files);
  const decoded = [];
  for (const res of resources) {
    const d = decodeResource(res, diags);
    if (d) decoded.push({ ...res, ...d });
  }
  return { files, resources: decoded, diags };
}

function fmt(dir, { flags, args }) {
  // fmtSupportedExts: .tf .tofu .tfvars .tftest.hcl .tofutest.hcl; *.tf.json is not among them.
  const HCL = ['.tf', '.tofu', '.tfvars', '.tftest.hcl', '.tofutest.hcl'];
  const found = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      if (isIgnoredFile(name)) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        if (flags.recursive) walk(p);
      } else if (HCL.some((e) => name.endsWith(e))) found.push(p);
    }
  };
  for (const target of args.length ? args : ['.']) {
    const p = join(dir, target);
    if (statSync(p).isDirectory()) walk(p);
    else if (HCL.some((e) => target.endsWith(e))) found.push(p);
    else {
      fail([
        {
          severity: 'error',
          summary: 'Invalid file extension',
          detail:
            'Only .tf, .tofu, .tfvars, .tftest.hcl, and .tofutest.hcl files can be processed with tofu fmt',
        },
      ]);
      return 2;
    }
  }
  if (found.length) {
    fail([
      {
        severity: 'error',
        summary: 'Native syntax is not supported (tofu stand-in)',
        detail: `The tofu stand-in cannot parse or format HCL native syntax; found ${found.join(', ')}.`,
      },
    ]);
    return 2; // fmt's exit status for an error
  }
  return 0; // nothing it formats: JSON configuration is left alone, as by real tofu fmt
}

function init(dir) {
  const { files, diags } = (() => {
    const files = readModule(dir);
    return { files, diags: structure(files).diags };
  })();
  if (files.length === 0) {
    out(
      '\nOpenTofu initialized in an empty directory!\n\nThe directory has no OpenTofu configuration files. You may begin working\nwith OpenTofu immediately by creating OpenTofu configuration files.\n',
    );
    return 0;
  }
  out('\nInitializing the backend...\n');
  if (diags.length) {
    errOut(
      diagText({
        severity: 'error',
        summary:
          'OpenTofu encountered problems during initialisation, including problems\nwith the configuration, described below.\n\nThe OpenTofu configuration must be valid before initialization so that\nOpenTofu can determine which modules and providers need to be installed.',
      }),
    );
    return fail(diags, sourcesOf(files));
  }
  const lockFile = join(dir, '.terraform.lock.hcl');
  const had = existsSync(lockFile);
  mkdirSync(
    join(dir, '.terraform', 'providers', ...PROVIDER.split('/'), PROVIDER_VERSION, 'linux_amd64'),
    { recursive: true },
  );
  out('\nInitializing provider plugins...\n');
  if (had)
    out(
      `- Reusing previous version of hashicorp/local from the dependency lock file\n- Using previously-installed hashicorp/local v${PROVIDER_VERSION}\n`,
    );
  else {
    out(
      `- Finding latest version of hashicorp/local...\n- Installing hashicorp/local v${PROVIDER_VERSION}...\n- Installed hashicorp/local v${PROVIDER_VERSION} (tofu stand-in: built in, nothing downloaded)\n`,
    );
    writeFileSync(
      lockFile,
      `# This file is maintained automatically by "tofu init".\n# Manual edits may be lost in future updates.\n\nprovider "${PROVIDER}" {\n  version = "${PROVIDER_VERSION}"\n  hashes  = []\n}\n`,
    );
    out(
      '\n' +
        wrap(
          'OpenTofu has created a lock file .terraform.lock.hcl to record the provider selections it made above. Include this file in your version control repository so that OpenTofu can guarantee to make the same selections by default when you run "tofu init" in the future.',
        ) +
        '\n',
    );
  }
  out('\nOpenTofu has been successfully initialized!\n');
  return 0;
}

function validate(dir, { flags }) {
  const { files, resources, diags } = load(dir);
  if (!diags.length && resources.length && !initialized(dir))
    diags.push({
      severity: 'error',
      summary: 'Missing required provider',
      detail: `This configuration requires provider ${PROVIDER}, but that provider isn't available. You may be able to install it automatically by running:\n  tofu init`,
    });
  const sources = sourcesOf(files);
  if (flags.json) {
    const errors = diags.filter((d) => d.severity === 'error').length;
    const body = {
      format_version: '1.0',
      valid: errors === 0,
      error_count: errors,
      warning_count: diags.length - errors,
      diagnostics: diags.map((d) => (d.range ? { ...d, snippet: snippet(d.range, sources) } : d)),
    };
    out(`${JSON.stringify(body, null, 2)}\n`);
  } else if (diags.length) fail(diags, sources);
  else out('Success! The configuration is valid.\n\n');
  return diags.some((d) => d.severity === 'error') ? 1 : 0;
}

function snippet(range, sources) {
  const code = (sources[range.filename] ?? '').split('\n')[range.start.line - 1] ?? '';
  const end = range.end.line === range.start.line ? range.end.column - 1 : code.length;
  return {
    context: null,
    code,
    start_line: range.start.line,
    highlight_start_offset: range.start.column - 1,
    highlight_end_offset: end,
    values: [],
  };
}

/** Takes the lock, retrying until -lock-timeout (default 0s: one attempt). */
async function acquire(dir, flags, operation) {
  if (flags.lock === false) return () => {};
  const timeoutMs = parseDuration(flags['lock-timeout'] ?? '0s');
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return lockState(dir, operation);
    } catch (e) {
      if (!(e instanceof LockError) || Date.now() >= until) throw e;
      await sleep(100);
    }
  }
}

const parseDuration = (s) => {
  const m = /^(\d+)(ms|s|m)?$/.exec(s);
  if (!m) throw new UsageError(`invalid duration ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's'];
};

const holdMs = () => Number(process.env.TOFU_STANDIN_HOLD_MS ?? 0);

async function plan(dir, { flags }) {
  const { files, resources, diags } = load(dir);
  if (diags.length) return fail(diags, sourcesOf(files));
  if (resources.length && !initialized(dir)) return fail([NOT_INIT]);
  const unlock = await acquire(dir, flags, 'OperationTypePlan');
  try {
    if (holdMs()) await sleep(holdMs());
    const p = makePlan({ resources, state: readState(dir), configHash: configHash(files) });
    out(planText(p, flags.out));
    if (flags.out) writeFileSync(join(dir, flags.out), JSON.stringify(p));
    return flags['detailed-exitcode'] && hasChanges(p) ? 2 : 0;
  } finally {
    unlock();
  }
}

function readPlanFile(dir, file) {
  const fail1 = (detail) => {
    throw new PlanFileError(`\nError: Failed to load "${file}" as a plan file\n\n${detail}\n`);
  };
  let text;
  try {
    text = readFileSync(join(dir, file), 'utf8');
  } catch (e) {
    fail1(`Error: ${e.message}`);
  }
  try {
    const p = JSON.parse(text);
    if (p.standin_plan_format === 1) return p;
  } catch {
    /* falls through */
  }
  return fail1('Error: the file is not a plan file written by the tofu stand-in.');
}

class PlanFileError extends Error {}

function show(dir, { flags, args }) {
  if (!flags.json || args.length !== 1)
    throw new UsageError('the tofu stand-in supports only show -json <planfile>');
  out(`${JSON.stringify(showJson(readPlanFile(dir, args[0])))}\n`);
  return 0;
}

async function apply(dir, { flags, args }) {
  let p;
  if (args.length === 1) p = readPlanFile(dir, args[0]);
  else if (flags['auto-approve'] && args.length === 0) {
    const { files, resources, diags } = load(dir);
    if (diags.length) return fail(diags, sourcesOf(files));
    p = makePlan({ resources, state: readState(dir), configHash: configHash(files) });
  } else
    throw new UsageError(
      'the tofu stand-in applies a saved plan, or plans and applies with -auto-approve',
    );
  if (Object.keys(p.refreshed).length + p.changes.length && !initialized(dir))
    return fail([NOT_INIT]);
  const unlock = await acquire(dir, flags, 'OperationTypeApply');
  try {
    const state = readState(dir);
    const current = { lineage: state?.lineage ?? '', serial: state?.serial ?? 0 };
    const firstPlan = p.prior.lineage === '' && p.prior.serial === 0;
    if (!firstPlan && p.prior.lineage !== current.lineage)
      return fail([
        {
          severity: 'error',
          summary: 'Saved plan does not match the given state',
          detail:
            'The given plan file can not be applied because it was created from a different state lineage.',
        },
      ]);
    if (p.prior.serial !== current.serial)
      return fail([
        {
          severity: 'error',
          summary: 'Saved plan is stale',
          detail:
            'The given plan file can no longer be applied because the state was changed by another operation after the plan was created.',
        },
      ]);
    return await applyChanges(dir, p, state);
  } finally {
    unlock();
  }
}

async function applyChanges(dir, p, state) {
  let interrupted = false;
  let wake = () => {};
  process.on('SIGTERM', () => {
    interrupted = true;
    out(
      '\nInterrupt received.\nPlease wait for OpenTofu to exit or data loss may occur.\nGracefully shutting down...\n',
    );
    wake();
  });
  const objects = { ...p.refreshed };
  let prior = state;
  const persist = () => {
    const next = nextState(prior, objects);
    writeState(dir, prior, next);
    prior = next;
  };
  if (JSON.stringify(stateObjects(state)) !== JSON.stringify(objects)) persist(); // refreshed drift
  let done = 0;
  for (const ch of p.changes.filter((c) => c.action !== 'no-op')) {
    if (ch.action === 'delete' || ch.action === 'replace') {
      out(`${ch.address}: Destroying... [id=${ch.before.id}]\n`);
      remove(ch.before);
      delete objects[ch.address];
      out(`${ch.address}: Destruction complete after 0s\n`);
    }
    if (ch.action === 'create' || ch.action === 'replace') {
      out(`${ch.address}: Creating...\n`);
      objects[ch.address] = create(ch.after);
      out(`${ch.address}: Creation complete after 0s [id=${objects[ch.address].id}]\n`);
    }
    persist();
    if (++done === 1 && holdMs())
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, holdMs());
        wake = () => (clearTimeout(timer), resolve()); // a pending timer would keep tofu alive
      });
    if (interrupted) {
      errOut('\nError: execution halted\n\n');
      return 1;
    }
  }
  const c = counts(p);
  out(
    `\nApply complete! Resources: ${c.add} added, ${c.change} changed, ${c.destroy} destroyed.\n`,
  );
  return 0;
}

function version({ flags }) {
  if (flags.json)
    out(
      `${JSON.stringify({ terraform_version: TOFU_VERSION, platform: 'linux_amd64', provider_selections: {} }, null, 2)}\n`,
    );
  else out(`OpenTofu v${TOFU_VERSION}\non linux_amd64\n`);
  return 0;
}

const COMMANDS = { fmt, init, validate, plan, show, apply, version };

export async function main(argv) {
  // Global -chdir=DIR comes before the command, as in OpenTofu.
  let dir = process.cwd();
  if (argv[0]?.startsWith('-chdir=')) dir = argv.shift().slice('-chdir='.length);
  const [command, ...rest] = argv;
  const run = COMMANDS[command];
  if (!run) {
    errOut(
      `Usage: tofu [global options] <subcommand> [args]\n\nThe tofu stand-in knows: ${Object.keys(COMMANDS).join(', ')}.\n`,
    );
    return 1;
  }
  try {
    const parsed = parseFlags(command, rest);
    return command === 'version' ? run(parsed) : await run(dir, parsed);
  } catch (e) {
    if (e instanceof UsageError) errOut(`${e.message}\n`);
    else if (e instanceof StandinRefusal)
      errOut(
        diagText({
          severity: 'error',
          summary: 'Unsupported configuration (tofu stand-in)',
          detail: e.message,
        }),
      );
    else if (e instanceof LockError) errOut(lockErrorText(e.info));
    else if (e instanceof PlanFileError) errOut(e.message);
    else throw e;
    return command === 'fmt' && e instanceof StandinRefusal ? 2 : 1;
  }
}
