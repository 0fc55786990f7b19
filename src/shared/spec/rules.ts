/**
 * Rules that look at several fields at once. They run even when some field already failed (every
 * problem is reported at once), so they check the type of whatever they read: a field that failed
 * still holds its raw input.
 */
import type { z } from 'zod';
import { healthUrl, servedPort, servingProcess, type ProcessPorts } from './derive.js';
import { durationMs } from './durations.js';
import { textProblem } from './fields.js';
import { SPEC_LIMITS } from './limits.js';
import { isTimeZone, scheduleProblem } from './schedule.js';

const issue = (ctx: z.RefinementCtx, path: PropertyKey[], message: string) =>
  ctx.addIssue({ code: 'custom', path, message });

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** A process as the rules see it: any field may hold a raw, invalid value. */
export type ProcessFields = Record<string, unknown>;

/**
 * A scheduled process is started fresh on each tick and exits when done: nothing can route
 * traffic to it, and several copies would run the same job several times per tick.
 */
function scheduledRules(p: ProcessFields, ctx: z.RefinementCtx): void {
  if (typeof p.schedule !== 'string') {
    if (p.timezone !== undefined)
      issue(ctx, ['timezone'], 'only a scheduled process (one with a schedule) has a time zone');
    return;
  }
  if (p.port !== undefined)
    issue(
      ctx,
      ['port'],
      'a scheduled process (one with a schedule) runs as a job on each tick and serves no traffic, so it cannot have a port',
    );
  if (typeof p.replicas === 'number' && p.replicas > 1)
    issue(
      ctx,
      ['replicas'],
      'a scheduled process runs one copy per tick; more replicas would run the job several times at once (use 0 or 1)',
    );
  const zone = p.timezone;
  if (textProblem(p.schedule, SPEC_LIMITS.shortText)) return; // reported by the field
  if (zone !== undefined && (typeof zone !== 'string' || !isTimeZone(zone))) return;
  const problem = scheduleProblem(p.schedule, zone);
  if (problem) issue(ctx, [problem.field], problem.message);
}

/** A health check needs a port to probe, and its path must make a URL on it. */
function portRules(p: ProcessFields, ctx: z.RefinementCtx): void {
  const health = p.health as { path?: unknown } | undefined;
  if (health !== undefined && p.port === undefined) {
    issue(
      ctx,
      ['health'],
      'a health check probes the process on its port, and this process has none (add a port or remove health)',
    );
  }
  if (!isInt(p.port)) return;
  if (typeof health?.path === 'string' && !textProblem(health.path, SPEC_LIMITS.pathLength)) {
    let url: URL | undefined;
    try {
      url = new URL(healthUrl(p.port, health.path));
    } catch {
      url = undefined;
    }
    if (url?.hostname !== '127.0.0.1' || Number(url.port || 80) !== p.port)
      issue(ctx, ['health', 'path'], 'does not make a valid URL after http://127.0.0.1:<port>');
  }
}

export function processRules(p: ProcessFields, ctx: z.RefinementCtx): void {
  scheduledRules(p, ctx);
  portRules(p, ctx);
}

/** Host networking: two processes of one app cannot be served on the same port. */
function portOverlaps(processes: Record<string, ProcessFields>, ctx: z.RefinementCtx): void {
  const taken = new Map<number, string>();
  for (const [name, p] of Object.entries(processes)) {
    if (typeof p !== 'object' || p === null || !isInt(p.port) || !isInt(p.replicas)) continue;
    const port = servedPort({ port: p.port, replicas: p.replicas });
    if (port === undefined) continue;
    const other = taken.get(port);
    if (other !== undefined)
      issue(
        ctx,
        ['processes', name, 'port'],
        `it would be served on port ${port}, but processes.${other} is served there already`,
      );
    else taken.set(port, name);
  }
}

/** Rules across the whole spec: ports of different processes, endpoints and who serves them. */
export function appRules(spec: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const processes = spec.processes;
  if (typeof processes !== 'object' || processes === null || Array.isArray(processes)) return;
  portOverlaps(processes as Record<string, ProcessFields>, ctx);
  const endpoints = spec.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0) return;
  const valid = Object.values(processes).every((p: ProcessFields) => isInt(p?.replicas));
  if (valid && !servingProcess(processes as Record<string, ProcessPorts>)) {
    issue(
      ctx,
      ['endpoints'],
      'endpoints are routed to a process with a port and at least one replica (web, else the first such process), and this app has none',
    );
  }
}

/** The healthy step's window must fit in its timeout, or no release could ever be verified. */
export function deployPolicyRules(policy: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const { minHealthyTime, healthTimeout } = policy;
  if (typeof minHealthyTime !== 'string' || typeof healthTimeout !== 'string') return;
  let min: number;
  let timeout: number;
  try {
    [min, timeout] = [durationMs(minHealthyTime), durationMs(healthTimeout)];
  } catch {
    return; // reported by the fields
  }
  if (min >= timeout) {
    issue(
      ctx,
      ['minHealthyTime'],
      `must be shorter than deployPolicy.healthTimeout (${healthTimeout}): a release must stay healthy for minHealthyTime (${minHealthyTime}) before healthTimeout ends the wait, so none could ever be verified`,
    );
  }
}
