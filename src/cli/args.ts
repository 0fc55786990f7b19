/** Command-line grammar: global flags, one spec per command, help texts (node's util.parseArgs). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandSpec {
  usage: string;
  summary: string;
  details?: string;
  options: Options;
  /** Positional arguments allowed: [min, max]. */
  args: [number, number];
}

const GLOBAL: Options = {
  api: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const json: Options = { json: { type: 'boolean' } };
const noWait: Options = { 'no-wait': { type: 'boolean' } };

export const COMMANDS: Record<string, CommandSpec> = {
  deploy: {
    usage: 'norn deploy <app> [--ref <ref>] [--no-wait]',
    summary: 'deploy an app and follow its steps live',
    details:
      "--ref <ref>   branch, tag or commit SHA (default: the app's branch)\n--no-wait     print the deployment id and return once the run is accepted",
    options: { ref: { type: 'string' }, ...noWait },
    args: [1, 1],
  },
  forge: {
    usage: 'norn forge <app> [--force] [--no-wait]',
    summary:
      "provision a kubernetes app's Deployment, Service, cloudflared rule and DNS route, and follow it (a failed forge is resumed)",
    details:
      '--force       on a forged app: tear it down, then forge it afresh (both runs followed)\n--no-wait     print the run id(s) and return once accepted',
    options: { force: { type: 'boolean' }, ...noWait },
    args: [1, 1],
  },
  teardown: {
    usage: 'norn teardown <app> [--no-wait]',
    summary: 'remove what forge made for a kubernetes app (PVCs stay), and follow it',
    options: { ...noWait },
    args: [1, 1],
  },
  status: {
    usage: 'norn status [app] [--json]',
    summary: "every app's latest deployment, or one app's lease, queue and recent runs",
    options: { ...json },
    args: [0, 1],
  },
  logs: {
    usage:
      'norn logs <deployment> [--follow] [--json]\n       norn logs <deployment> --step <step>',
    summary: "the events of a deployment's run, or what one step wrote (e.g. build output)",
    details:
      '--follow, -f  keep streaming until the run ends (exit 1 if it failed)\n--json        one event envelope per line\n--step <name>  the output lines of one step',
    options: { follow: { type: 'boolean', short: 'f' }, step: { type: 'string' }, ...json },
    args: [1, 1],
  },
  cancel: {
    usage: 'norn cancel <deployment>',
    summary: 'cancel a queued or running deployment',
    options: {},
    args: [1, 1],
  },
  resume: {
    usage: 'norn resume <deployment> [--no-wait]',
    summary: 'rerun a failed or cancelled deployment from its failed step, and follow it',
    options: { ...noWait },
    args: [1, 1],
  },
  snapshots: {
    usage: 'norn snapshots <app> [--json]\n       norn snapshots <app> restore <ts> [--no-wait]',
    summary: "list an app's database snapshots, or restore one and follow the restore",
    options: { ...json, ...noWait },
    args: [1, 3],
  },
};

const GLOBAL_HELP = `global flags:
  --api <url>     the norn api (env NORN_API_URL, default http://127.0.0.1:8080)
  --token <t>     API token (env NORN_API_TOKEN)
  --help, -h      help for a command`;

const EXIT_HELP =
  'exit codes: 0 ok, 1 the run failed or was cancelled, 2 usage error, 3 api unreachable or answered an error';

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return `norn: deployment control plane client\n\nusage: norn <command> [args] [flags]\n\ncommands:\n${lines.join('\n')}\n\n${GLOBAL_HELP}\n\n${EXIT_HELP}`;
}

export function commandHelp(name: string): string {
  const c = COMMANDS[name]!;
  return `usage: ${c.usage}\n\n${c.summary}\n${c.details ? `\n${c.details}\n` : ''}\n${GLOBAL_HELP}\n\n${EXIT_HELP}`;
}

export interface Parsed {
  command: string | undefined;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

const ALL: Options = Object.assign({}, GLOBAL, ...Object.values(COMMANDS).map((c) => c.options));

/**
 * Two passes: a lenient one to find the command (flags may come before or after it), then a strict
 * one with just the global and that command's options, so a typo is a usage error, not ignored.
 */
export function parseCommandLine(argv: string[]): Parsed {
  const loose = parseArgs({ args: argv, options: ALL, allowPositionals: true, strict: false });
  const command = loose.positionals[0];
  if (command === undefined || command === 'help') {
    const topic = command === 'help' ? loose.positionals[1] : undefined;
    return {
      command: topic && COMMANDS[topic] ? topic : undefined,
      positionals: [],
      values: { help: true, ...(command ? {} : { bare: !loose.values.help }) },
    };
  }
  const spec = COMMANDS[command];
  if (!spec)
    throw usageError(`unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...GLOBAL, ...spec.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usageError(
      `${(err as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '')}\nusage: ${spec.usage}`,
    );
  }
  const positionals = parsed.positionals.slice(1);
  const values = parsed.values as Parsed['values'];
  if (!values.help && (positionals.length < spec.args[0] || positionals.length > spec.args[1])) {
    throw usageError(`wrong number of arguments\nusage: ${spec.usage}`);
  }
  return { command, positionals, values };
}
