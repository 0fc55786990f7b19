/** Infraspec fixtures shared by the unit tests and the api tests: builders and the issue-7 repros. */
import {
  formatProblems,
  parseInfraspec,
  type Infraspec,
  type SpecProblem,
} from '../../src/shared/spec/infraspec.js';

export const MINIMAL = { name: 'app', processes: { web: { port: 8080 } } };

/** A minimal valid spec (as a parsed object) with `patch` applied on top. */
export const aSpec = (patch: Record<string, unknown> = {}) => ({ ...MINIMAL, ...patch });

/** A spec whose only process is `job`, scheduled by `schedule` (in `timezone`, if given). */
export const aSchedule = (schedule: string, timezone?: string) =>
  aSpec({ processes: { job: { schedule, command: 'run', ...(timezone ? { timezone } : {}) } } });

export function problemsOf(input: unknown): SpecProblem[] {
  const result = parseInfraspec(input);
  if (result.ok)
    throw new Error(`expected problems, got a valid spec: ${JSON.stringify(result.spec)}`);
  return result.problems;
}

export function specOf(input: unknown): Infraspec {
  const result = parseInfraspec(input);
  if (!result.ok) throw new Error(`expected a valid spec:\n${formatProblems(result.problems)}`);
  return result.spec;
}

/** A "billion laughs" document: ten aliases of ten aliases … of ten strings, nine levels deep. */
export function billionLaughs(name = 'bomb'): string {
  const levels = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i <= 9; i++)
    levels.push(
      `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  return `name: ${name}\nprocesses: {web: {}}\nlaughs:\n  ${levels.join('\n  ')}\n`;
}

export interface Repro {
  label: string;
  spec: Record<string, unknown>;
  path: string;
  message: RegExp;
}

const web = (p: Record<string, unknown>) => aSpec({ processes: { web: { port: 8080, ...p } } });

/**
 * Issue 7, item 10: specs registration used to accept and the deploy then refused (or mishandled)
 * after clone, build and test. Each must be refused at registration, at this path.
 */
export const REPROS: Repro[] = [
  {
    label: 'health.timeout: 1e308',
    spec: web({ health: { path: '/', timeout: 1e308 } }),
    path: 'processes.web.health.timeout',
    message: /must be at most 5m/,
  },
  {
    label: 'health.timeout: "9999999999999999999h"',
    spec: web({ health: { path: '/', timeout: '9999999999999999999h' } }),
    path: 'processes.web.health.timeout',
    message: /must be at most 5m/,
  },
  {
    label: 'deployPolicy.healthTimeout: 1e308',
    spec: aSpec({ deployPolicy: { healthTimeout: 1e308 } }),
    path: 'deployPolicy.healthTimeout',
    message: /must be at most 24h/,
  },
  {
    label: 'cron 61 * * * *',
    spec: aSchedule('61 * * * *'),
    path: 'processes.job.schedule',
    message: /refused by the scheduler: .*61 expected range 0-59/,
  },
  {
    label: 'cron * * 31 2 * (never fires)',
    spec: aSchedule('* * 31 2 *'),
    path: 'processes.job.schedule',
    message: /never occurs in those months, so it would never run/,
  },
  {
    label: 'cron 0 0 31 4,6 * (never fires; the scheduler would silently skip it)',
    spec: aSchedule('0 0 31 4,6 *'),
    path: 'processes.job.schedule',
    message: /never runs: the scheduler finds no matching time in the next 8 years/,
  },
  {
    label: 'replicas: 2^31',
    spec: web({ replicas: 2 ** 31 }),
    path: 'processes.web.replicas',
    message: /must be at most 100/,
  },
  {
    label: 'a trailing "-" in the app name',
    spec: aSpec({ name: 'shop-' }),
    path: 'name',
    message: /must start and end with a letter or digit/,
  },
  {
    label: 'minHealthyTime: 0',
    spec: aSpec({ deployPolicy: { minHealthyTime: 0 } }),
    path: 'deployPolicy.minHealthyTime',
    message: /longer than zero: .* a release nobody watched is not verified/,
  },
  {
    label: 'minHealthyTime not shorter than healthTimeout (never verified)',
    spec: aSpec({ deployPolicy: { healthTimeout: '10s' } }),
    path: 'deployPolicy.minHealthyTime',
    message: /must be shorter than deployPolicy.healthTimeout \(10s\)/,
  },
  {
    label: 'an endpoint the forge step cannot route ([::1])',
    spec: aSpec({ endpoints: [{ url: 'http://[::1]:8080' }] }),
    path: 'endpoints[0].url',
    message: /not a valid host name or URL/,
  },
  {
    label: 'endpoints but no process to serve them',
    spec: aSpec({ processes: { worker: {} }, endpoints: [{ url: 'app.example.com' }] }),
    path: 'endpoints',
    message: /a process with a port and at least one replica/,
  },
  {
    label: 'a branch git refuses',
    spec: aSpec({ repo: { url: 'https://git.example.com/a.git', branch: 'release..1' } }),
    path: 'repo.branch',
    message: /is not a ref git accepts: it contains "\.\."/,
  },
  {
    label: 'a branch the deploy request refuses',
    spec: aSpec({ repo: { url: 'https://git.example.com/a.git', branch: 'feature+x' } }),
    path: 'repo.branch',
    message: /must be a branch, tag or commit SHA/,
  },
  {
    label: 'a file:// repo on another host (clone refuses it)',
    spec: aSpec({ repo: { url: 'file://build-host/srv/git/app.git' } }),
    path: 'repo.url',
    message: /cannot be cloned: file:\/\/ URLs must name a local path/,
  },
  {
    label: 'a Dockerfile path that is the repository itself',
    spec: aSpec({ build: { dockerfile: 'docker/..' } }),
    path: 'build.dockerfile',
    message: /names a directory, not a file/,
  },
  {
    label: 'two processes on one port',
    spec: aSpec({ processes: { web: { port: 3000, replicas: 2 }, api: { port: 3000 } } }),
    path: 'processes.api.port',
    message: /served on port 3000, but processes.web is served there already/,
  },
  {
    label: 'a template database',
    spec: aSpec({ infrastructure: { postgres: { database: 'template0' } } }),
    path: 'infrastructure.postgres.database',
    message: /template database/,
  },
  {
    label: 'a 100 KiB env value',
    spec: aSpec({ env: { BIG: 'x'.repeat(100 * 1024) } }),
    path: 'env.BIG',
    message: /no text in an infraspec may be longer than 32768 characters/,
  },
  {
    label: 'a NUL in a spec field',
    spec: aSpec({ env: { NAME: 'a\u0000b' } }),
    path: 'env.NAME',
    message: /must not contain NUL characters/,
  },
];
