/**
 * Verify checks: what must hold after a change is applied before it counts as done (an endpoint
 * answering, a namespace's pods ready, a CI runner back online). Each check is tried until its
 * deadline; all of them run, at once, and each reports its own outcome, so one failure does not
 * hide another.
 */
import { NornError } from '../shared/errors.js';
import { redactText } from '../shared/exec.js';
import { pause } from '../shared/pause.js';
import { durationMs } from '../shared/spec/durations.js';
import type { KubeConnection } from '../targets/kubernetes/connection.js';
import {
  probeHttp,
  probePods,
  probeRunner,
  type HttpCheck,
  type PodsCheck,
  type Probe,
  type RunnerCheck,
} from './verify-probes.js';

export type { HttpCheck, PodsCheck, RunnerCheck };

export type VerifyCheck = { http: HttpCheck } | { pods: PodsCheck } | { runner: RunnerCheck };

export interface VerifyDeps {
  /** The kubernetes target's connection (pods checks); called once, when a pods check runs. */
  kube?: () => KubeConnection;
  /** Where runner checks find their tokens (`tokenEnv`). */
  env: Record<string, string | undefined>;
  signal: AbortSignal;
  log: (line: string) => void;
  now?: () => number;
}

export interface CheckResult {
  /** What was checked, e.g. `http https://app/healthz`. */
  check: string;
  ok: boolean;
  /** On success what was seen; on failure why, as last seen. */
  detail: string;
  attempts: number;
  durationMs: number;
}

export interface VerifyResult {
  ok: boolean;
  results: CheckResult[];
}

const DEFAULT_DEADLINE = '2m';
const DEFAULT_INTERVAL = '5s';
/** The last try, made at the deadline, still gets this long to answer. */
const MIN_ATTEMPT_MS = 1_000;

export function checkName(c: VerifyCheck): string {
  if ('http' in c) return `http ${c.http.url}`;
  if ('pods' in c) return `pods ${c.pods.namespace} ${c.pods.selector}`;
  return `runner ${c.runner.url} [${c.runner.tags.join(', ')}]`;
}

type Attempt = (signal: AbortSignal) => Promise<Probe>;

/** What one check tries, and the secrets its details must not show; or why it cannot run. */
function prepare(c: VerifyCheck, deps: VerifyDeps): { attempt: Attempt; secrets: string[] } {
  if ('http' in c) return { attempt: (s) => probeHttp(c.http, s), secrets: [] };
  if ('pods' in c) {
    if (!deps.kube)
      throw new NornError(
        'CONFIG_INVALID',
        'a pods check needs the kubernetes target, and none is configured here',
      );
    const kube = deps.kube();
    return { attempt: (s) => probePods(c.pods, kube, s), secrets: [] };
  }
  const { tokenEnv } = c.runner;
  const token = tokenEnv ? deps.env[tokenEnv] : undefined;
  if (tokenEnv && !token)
    throw new NornError(
      'CONFIG_INVALID',
      `the runner check's token variable ${tokenEnv} is not set`,
    );
  return { attempt: (s) => probeRunner(c.runner, token, s), secrets: token ? [token] : [] };
}

function timing(c: VerifyCheck): { deadlineMs: number; intervalMs: number } {
  const spec = 'http' in c ? c.http : 'pods' in c ? c.pods : c.runner;
  return {
    deadlineMs: durationMs(spec.deadline ?? DEFAULT_DEADLINE),
    intervalMs: durationMs(spec.interval ?? DEFAULT_INTERVAL),
  };
}

async function runOne(c: VerifyCheck, deps: VerifyDeps): Promise<CheckResult> {
  const now = deps.now ?? Date.now;
  const check = checkName(c);
  const start = now();
  let attempts = 0;
  let secrets: string[] = [];
  const end = (ok: boolean, detail: string): CheckResult => {
    const result = {
      check,
      ok,
      detail: redactText(detail, secrets),
      attempts,
      durationMs: now() - start,
    };
    deps.log(`verify ${check}: ${ok ? 'ok' : 'FAILED'}: ${result.detail} (${attempts} attempts)`);
    return result;
  };
  let attempt: Attempt;
  let deadlineMs: number;
  let intervalMs: number;
  try {
    ({ deadlineMs, intervalMs } = timing(c));
    ({ attempt, secrets } = prepare(c, deps));
  } catch (err) {
    return end(false, (err as Error).message);
  }
  let last = '';
  for (;;) {
    attempts += 1;
    const remaining = deadlineMs - (now() - start);
    const signal = AbortSignal.any([
      deps.signal,
      AbortSignal.timeout(Math.max(remaining, MIN_ATTEMPT_MS)),
    ]);
    let probe: Probe;
    try {
      probe = await attempt(signal);
    } catch (err) {
      probe = { ok: false, detail: (err as Error).message };
    }
    if (deps.signal.aborted) throw new NornError('CANCELLED', `verify ${check} was cancelled`);
    if (probe.ok) return end(true, probe.detail);
    if (probe.detail !== last) deps.log(`verify ${check}: ${redactText(probe.detail, secrets)}`);
    last = probe.detail;
    const left = deadlineMs - (now() - start);
    if (probe.final || left <= 0) return end(false, probe.detail);
    await pause(Math.min(intervalMs, left), deps.signal);
  }
}

/** Runs every check at once; `ok` only when all pass. Rejects only when `signal` aborts (CANCELLED). */
export async function runChecks(
  checks: readonly VerifyCheck[],
  deps: VerifyDeps,
): Promise<VerifyResult> {
  const results = await Promise.all(checks.map((c) => runOne(c, deps)));
  return { ok: results.every((r) => r.ok), results };
}
