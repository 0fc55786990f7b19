/**
 * The stand-in's command line: fmt, init, validate, plan, show, apply and version, with Go-style
 * flags (`-name=value`, `-name value`, `-bool`, `-bool=false`; the first non-flag ends them).
 * Exit codes are OpenTofu's: fmt -check 3 when a file needs formatting and 2 on an error
 * (command/fmt.go); validate 1 when invalid (views/validate.go); plan -detailed-exitcode 0 / 1 / 2
 * (command/plan.go); everything else 0 or 1.
 *
 * State is where `terraform.backend.local.path` says (terraform.tfstate by default); init saves the
 * backend as tofu does and the other commands ask for init again when it changed (backend.mjs);
 * init's -reconfigure and -backend=false are honoured, state migration is refused.
 *
 * Test hooks (environment):
 * - TOFU_STANDIN_HOLD_MS: plan sleeps this long right after taking the state lock; apply sleeps
 *   after its first change is applied and its state persisted (a "mid-apply" moment). SIGTERM
 *   during the sleep stops apply gracefully, as OpenTofu does: state of what was done is written
 *   and the lock released; SIGKILL leaves the lock info file behind (a dead holder's lock is free).
 *   TOFU_STANDIN_HOLD_PLAN_MS / TOFU_STANDIN_HOLD_APPLY_MS hold only that command (and win over it).
 */
import { StandinRefusal } from './config.mjs';
import { LockError, TOFU_VERSION } from './state.mjs';
import { diagText, lockErrorText } from './render.mjs';
import { errOut, out, UsageError } from './common.mjs';
import { fmt, init, validate } from './setup.mjs';
import { apply, plan, PlanFileError, show } from './operate.mjs';

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
