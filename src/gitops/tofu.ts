/**
 * norn's OpenTofu driver: runs the `tofu` CLI (argv, never a shell) in one configuration
 * directory and turns its exit codes and output into typed results. A non-zero exit that means
 * something (invalid config, changes present, a held lock, a stale plan) is a result, not an
 * error; only a tofu that cannot run, a cancel, or output norn cannot read is thrown.
 *
 * The contract it relies on (OpenTofu internal/command): `fmt -check` exits 0 or 3 listing the
 * files (2 on an error); `validate -json` prints {format_version, valid, error_count,
 * warning_count, diagnostics} and exits 1 when invalid; `plan -detailed-exitcode` exits 0 (no
 * changes), 1 (error) or 2 (changes); `show -json <planfile>` prints the plan JSON; `apply
 * <planfile>` refuses with "Saved plan is stale" when the state moved since the plan, and any
 * locking command fails with "Error acquiring the state lock" while another holds it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { NornError, isNornError } from '../shared/errors.js';
import { runCommand, type RunCommandResult } from '../shared/exec.js';
import type { TerraformPlanJson } from './tofu-plan.js';

export {
  driftFingerprint,
  planSummary,
  type PlanSummary,
  type TerraformPlanJson,
  type TerraformResourceChange,
} from './tofu-plan.js';

export interface TofuOptions {
  /** The executable (NORN_TOFU_BIN): a path, or a name looked up on PATH. Default `tofu`. */
  bin?: string;
  /** The configuration directory every command runs in. */
  cwd: string;
  /** tofu's whole environment (provider credentials, TF_VAR_*); default: norn's own. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Every output line of every command, stdout and stderr, as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Strings that must never reach output or errors (tokens in provider variables). */
  redact?: string[];
}

export interface TofuDiagnostic {
  severity: 'error' | 'warning';
  summary: string;
  detail?: string;
  address?: string;
  range?: {
    filename: string;
    start: { line: number; column: number; byte: number };
    end: { line: number; column: number; byte: number };
  };
}

export interface FmtCheckResult {
  ok: boolean;
  /** Files `tofu fmt` would rewrite, as it lists them (relative to cwd). */
  files: string[];
}
export interface InitResult {
  ok: boolean;
  output: string;
}
export interface ValidateResult {
  valid: boolean;
  errorCount: number;
  warningCount: number;
  diagnostics: TofuDiagnostic[];
}
export interface PlanOptions {
  /** Where the saved plan goes (relative to cwd, or absolute). */
  out: string;
  /** Exit 2 when there are changes, so `changes` is known. */
  detailedExitcode?: boolean;
  /** false: plan without taking the state lock (-lock=false), e.g. a read-only drift check. */
  lock?: boolean;
}
export interface PlanResult {
  exitCode: number;
  /** With detailedExitcode: true on exit 2, false on 0; otherwise, and on an error, undefined. */
  changes: boolean | undefined;
  /** The plan failed because another operation holds the state lock. */
  locked: boolean;
  output: string;
}
export interface ApplyResult {
  ok: boolean;
  /** The state moved since the plan was made (or comes from another lineage): plan again. */
  stale: boolean;
  locked: boolean;
  output: string;
}

export interface Tofu {
  fmtCheck(): Promise<FmtCheckResult>;
  init(): Promise<InitResult>;
  validate(): Promise<ValidateResult>;
  plan(options: PlanOptions): Promise<PlanResult>;
  show(planFile: string): Promise<TerraformPlanJson>;
  apply(planFile: string): Promise<ApplyResult>;
}

const LOCKED = /Error acquiring the state lock/;
// backend_local.go: a moved serial, or a plan made against another state lineage.
const STALE = /Saved plan is stale|Saved plan does not match the given state/;
const MAX_OUTPUT = 1024 * 1024;

interface Run {
  code: number;
  stdout: string;
  output: string;
}

export function createTofu(options: TofuOptions): Tofu {
  const bin = options.bin ?? 'tofu';

  async function run(args: string[]): Promise<Run> {
    const lines: string[] = [];
    let size = 0;
    let result: RunCommandResult;
    try {
      result = await runCommand([bin, ...args], {
        cwd: options.cwd,
        env: options.env,
        signal: options.signal,
        redact: options.redact,
        onLine: (line, stream) => {
          if (size < MAX_OUTPUT) lines.push(line);
          size += line.length + 1;
          options.onLine?.(line, stream);
        },
      });
    } catch (err) {
      throw unavailable(err, bin) ?? err;
    }
    if (result.code === null)
      throw new NornError('COMMAND_FAILED', `tofu ${args[0]} ended by ${result.signal}`, {
        details: { tail: result.tail },
      });
    return { code: result.code, stdout: result.stdout, output: lines.join('\n') };
  }

  const failed = (what: string, r: Run) =>
    new NornError('COMMAND_FAILED', `tofu ${what} exited with ${r.code}:\n${tailOf(r.output)}`, {
      details: { exitCode: r.code },
    });

  return {
    async fmtCheck() {
      const r = await run(['fmt', '-check', '-recursive', '-no-color']);
      if (r.code !== 0 && r.code !== 3) throw failed('fmt -check', r);
      const files = r.stdout.split('\n').filter((l) => l.trim() !== '');
      return { ok: r.code === 0, files };
    },

    async init() {
      const r = await run(['init', '-input=false', '-no-color']);
      return { ok: r.code === 0, output: r.output };
    },

    async validate() {
      const r = await run(['validate', '-json', '-no-color']);
      const body = parseJson<{
        valid: boolean;
        error_count: number;
        warning_count: number;
        diagnostics: TofuDiagnostic[];
      }>(r, 'validate -json');
      if (typeof body.valid !== 'boolean') throw failed('validate -json', r);
      return {
        valid: body.valid,
        errorCount: body.error_count,
        warningCount: body.warning_count,
        diagnostics: body.diagnostics ?? [],
      };
    },

    async plan({ out, detailedExitcode = false, lock = true }) {
      const args = ['plan', '-input=false', '-no-color', `-out=${out}`];
      if (detailedExitcode) args.push('-detailed-exitcode');
      if (!lock) args.push('-lock=false');
      const r = await run(args);
      const changes = !detailedExitcode
        ? undefined
        : r.code === 2
          ? true
          : r.code === 0
            ? false
            : undefined;
      return {
        exitCode: r.code,
        changes,
        locked: r.code !== 0 && LOCKED.test(r.output),
        output: r.output,
      };
    },

    async show(planFile) {
      const r = await run(['show', '-json', '-no-color', planFile]);
      if (r.code !== 0) throw failed('show -json', r);
      const plan = parseJson<TerraformPlanJson>(r, 'show -json');
      if (typeof plan.format_version !== 'string') throw failed('show -json', r);
      return plan;
    },

    async apply(planFile) {
      const r = await run(['apply', '-input=false', '-no-color', planFile]);
      const refused = r.code !== 0;
      return {
        ok: !refused,
        stale: refused && STALE.test(r.output),
        locked: refused && LOCKED.test(r.output),
        output: r.output,
      };
    },
  };
}

/** sha256 (hex) of a file's bytes, e.g. a saved plan, so release applies the plan review saw. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function parseJson<T>(r: Run, what: string): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new NornError(
      'COMMAND_FAILED',
      `tofu ${what} (exit ${r.code}) printed no JSON:\n${tailOf(r.output)}`,
      { details: { exitCode: r.code } },
    );
  }
}

const tailOf = (output: string) => output.split('\n').slice(-20).join('\n');

/** A tofu that is not there or not executable: the installation is missing something. */
function unavailable(err: unknown, bin: string): NornError | undefined {
  if (!isNornError(err) || err.code !== 'COMMAND_FAILED') return undefined;
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOENT' && code !== 'EACCES') return undefined;
  return new NornError(
    'UNAVAILABLE',
    `cannot run OpenTofu "${bin}" (${code}): install tofu or set NORN_TOFU_BIN to its path`,
    { details: { bin }, cause: err },
  );
}
