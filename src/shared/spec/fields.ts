/**
 * Field-level rules of the infraspec: names, repository URLs and paths, cron schedules, time zones,
 * endpoints, env maps and durations. Each one carries its own operator-facing message; messages
 * never repeat values that could hold secrets (URLs may embed tokens, env values may be anything).
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { parseDuration } from './durations.js';

const DNS_LABEL = /^[a-z0-9][a-z0-9-]*$/;

/** App and process names end up in container, job and DNS names, hence lowercase and ≤ 63. */
export const dnsName = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(
    DNS_LABEL,
    'may only use lowercase letters, digits and "-", and must start with a letter or digit',
  );

export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const envKey = z
  .string()
  .regex(
    ENV_KEY,
    'environment variable names may only use letters, digits and "_", and must not start with a digit',
  );

/**
 * Env values: YAML/JSON numbers and booleans become strings (the YAML reader already swaps in the
 * source text, so `1.10` stays "1.10"). A null (`KEY:` with nothing after it) is refused rather than
 * guessed at, because it is more often a mistake than a wish for an empty string.
 */
export const envMap = z.record(
  envKey,
  z
    .union([z.string(), z.number(), z.boolean()], {
      error: (iss) =>
        iss.input === null
          ? 'has no value; write KEY: "" for an empty string'
          : 'must be a string, number or boolean',
    })
    .transform((value) => String(value)),
);

export const nonEmpty = () => z.string().min(1, 'must not be empty');

/** A non-empty string checked by `problemOf`, which returns a message or undefined when fine. */
const checkedString = (problemOf: (value: string) => string | undefined) =>
  nonEmpty().superRefine((value, ctx) => {
    const problem = value === '' ? undefined : problemOf(value); // empty is already reported
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Returns why `url` is not a git remote norn accepts, or undefined when it is fine. */
export function repoUrlProblem(url: string): string | undefined {
  if (url.startsWith('-')) return 'must not start with "-" (git would read it as an option)';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(url)) return 'must not contain spaces or control characters';
  if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!\/)[^:]/.test(url)) return undefined; // scp-like git@host:path
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (!scheme || !['https', 'http', 'ssh', 'file'].includes(scheme)) {
    return 'must be an https://, http://, ssh://, git@host:path or file:// URL';
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL';
  }
  if (scheme === 'file') return parsed.pathname.length > 1 ? undefined : 'file:// URL has no path';
  if (!parsed.hostname) return 'has no host name';
  // A token in the URL would be committed with the spec and shown in logs; norn has its own way in.
  if (parsed.password || ((scheme === 'https' || scheme === 'http') && parsed.username)) {
    return 'must not contain a user name, password or token; give norn private-repository access with NORN_GIT_TOKEN or NORN_GIT_SSH_KEY';
  }
  return undefined;
}

/**
 * Paths inside the cloned repository (Dockerfile, migrations directory). Only the text is checked
 * here; the build step must still resolve symlinks before reading, since a link can point outside.
 */
export function insideRepoProblem(path: string): string | undefined {
  if (path.includes('\u0000')) return 'must not contain NUL characters';
  if (
    path.startsWith('/') ||
    path.startsWith('\\') ||
    /^[A-Za-z]:[\\/]/.test(path) ||
    path.startsWith('~')
  ) {
    return 'must be a path relative to the repository root, not an absolute path';
  }
  const normal = posix.normalize(path.replace(/\\/g, '/'));
  if (normal === '..' || normal.startsWith('../'))
    return 'must stay inside the repository (it climbs out with "..")';
  return undefined;
}

/** A relative path that stays inside the repository; kept exactly as written. */
export const repoPath = () => checkedString(insideRepoProblem);

export const repoUrl = checkedString(repoUrlProblem);

const CRON_NAMES = 'JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT';
const CRON_FIELD = new RegExp(`^(?:[0-9*,/?#LW-]|${CRON_NAMES})+$`);

/** Returns why `schedule` is not a cron expression, or undefined. Checks shape only, like the Go norn. */
export function cronProblem(schedule: string): string | undefined {
  const fields = schedule.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5 && fields.length !== 6) {
    return `must be a cron expression with 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first); it has ${fields.length}`;
  }
  const bad = fields.findIndex((field) => !CRON_FIELD.test(field.toUpperCase()));
  if (bad === -1) return undefined;
  return `field ${bad + 1} ("${fields[bad]!.slice(0, 30)}") may only contain digits, * , - / ? L W # or names such as MON or JAN`;
}

export const cronSchedule = checkedString(cronProblem);

export function isTimeZone(zone: string): boolean {
  if (zone.trim() === '') return false;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export const timeZone = z.string().refine(isTimeZone, {
  error: (iss) =>
    `"${String(iss.input).slice(0, 60)}" is not a known IANA time zone (e.g. Europe/Paris, UTC)`,
});

const HOST_NAME =
  /^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/;

/** Endpoints are a bare host (`app.example.com`, `host:8080`) or an http(s) URL. */
export function endpointProblem(value: string): string | undefined {
  const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value);
  if (hasScheme && !/^https?:\/\//i.test(value))
    return 'must be a host name or an http:// or https:// URL';
  let parsed: URL;
  try {
    parsed = new URL(hasScheme ? value : `http://${value}`);
  } catch {
    return 'is not a valid host name or URL';
  }
  if (parsed.username || parsed.password) return 'must not contain a user name or password';
  const host = parsed.hostname;
  if (host.startsWith('[') || HOST_NAME.test(host)) return undefined;
  return 'is not a valid host name or URL';
}

export const endpointUrl = checkedString(endpointProblem);

/**
 * A duration field, kept as written (numbers become their string form, e.g. 30 → "30", still
 * meaning seconds); `positive` refuses zero where a zero would never make sense (timeouts).
 */
export const duration = ({ positive = false } = {}) =>
  z
    .union([z.string(), z.number()], { error: 'must be a duration such as 10s, 5m or 1h30m' })
    .transform((value, ctx) => {
      let ms: number;
      try {
        ms = parseDuration(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
      if (positive && ms <= 0)
        ctx.addIssue({ code: 'custom', message: 'must be longer than zero' });
      return String(value);
    });
