/**
 * Field-level rules of the infraspec: text, names, env maps, repository paths and durations.
 * Every string of the schema is built from `text()`, so each one has a length limit and refuses
 * NUL (which PostgreSQL, exec and Docker cannot carry) and, where a line break or control
 * character makes no sense, those too. Messages never repeat values that could hold secrets.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { durationMs } from './durations.js';
import { SPEC_LIMITS } from './limits.js';

/**
 * What control characters a text field takes: `line` none (names, URLs, paths), `script` tabs and
 * line breaks (shell commands), `any` everything but NUL (env values: a PEM key has line breaks, a
 * prompt may hold an escape sequence).
 */
export type TextKind = 'line' | 'script' | 'any';

/* eslint-disable no-control-regex -- control characters are exactly what these refuse */
const FORBIDDEN: Record<TextKind, RegExp> = {
  line: /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/,
  script: /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/,
  any: /\u0000/,
};
/* eslint-enable no-control-regex */

const codePoint = (c: string) =>
  `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `value` does not fit a text field of this kind and length, or undefined. */
export function textProblem(
  value: string,
  max: number,
  kind: TextKind = 'line',
): string | undefined {
  if (value.length > max) return `must be at most ${max} characters; it has ${value.length}`;
  const found = FORBIDDEN[kind].exec(value);
  if (!found) return undefined;
  const at = `at character ${found.index + 1}`;
  if (found[0] === '\u0000') return `must not contain NUL characters (\\u0000, found ${at})`;
  return kind === 'line'
    ? `must not contain line breaks or control characters (found ${codePoint(found[0])} ${at})`
    : `must not contain control characters other than tabs and line breaks (found ${codePoint(found[0])} ${at})`;
}

/**
 * A string field: at most `max` characters, no forbidden control characters, not empty unless
 * `empty`. A failure here stops the field's later checks (a regex never runs on 50 MB of text).
 */
export function text(o: { max: number; kind?: TextKind; empty?: boolean }) {
  return z.string().superRefine((value, ctx) => {
    const problem =
      !o.empty && value === '' ? 'must not be empty' : textProblem(value, o.max, o.kind);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, continue: false });
  });
}

/** A one-line text field of ordinary length (branches, regions, time zones). */
export const shortText = () => text({ max: SPEC_LIMITS.shortText });

/** A text field checked by `problemOf`, which returns a message or undefined when fine. */
export function checkedText(
  problemOf: (value: string) => string | undefined,
  o: { max: number; kind?: TextKind } = { max: SPEC_LIMITS.shortText },
) {
  return text(o).superRefine((value, ctx) => {
    const problem = problemOf(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** DNS-1123 label: container, image, job and DNS names are built from app and process names. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

export const dnsName = text({ max: 63 }).regex(
  DNS_LABEL,
  'may only use lowercase letters, digits and "-", and must start and end with a letter or digit',
);

export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const envKey = text({ max: SPEC_LIMITS.envKeyLength }).regex(
  ENV_KEY,
  'environment variable names may only use letters, digits and "_", and must not start with a digit',
);

/**
 * An env value: YAML/JSON numbers and booleans become strings (the YAML reader already swaps in
 * the source text, so `1.10` stays "1.10"). A null (`KEY:` with nothing after it) is refused rather
 * than guessed at, because it is more often a mistake than a wish for an empty string.
 */
const envValue = z.unknown().transform((raw, ctx) => {
  const value = typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : raw;
  if (typeof value !== 'string') {
    const message =
      value === null
        ? 'has no value; write KEY: "" for an empty string'
        : 'must be a string, number or boolean';
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  }
  const problem = textProblem(value, SPEC_LIMITS.envValueLength, 'any');
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
  return value;
});

/** At most `max` entries in a map or list, counted before anything else is said about them. */
export function atMost(max: number, what: string) {
  return (value: object, ctx: z.RefinementCtx) => {
    const count = Array.isArray(value) ? value.length : Object.keys(value).length;
    if (count > max)
      ctx.addIssue({ code: 'custom', message: `has ${count} ${what}; at most ${max} are allowed` });
  };
}

export const envMap = z
  .record(envKey, envValue)
  .superRefine(atMost(SPEC_LIMITS.envKeys, 'variables'));

/**
 * Why `path` is not a path inside the cloned repository, as a clause for messages ("it is an
 * absolute path"), or undefined. `file` also refuses the repository root itself and a trailing "/".
 * Only the text is checked; steps must still resolve symlinks, since a link can point outside.
 */
export function repoPathProblem(path: string, o: { file?: boolean } = {}): string | undefined {
  if (path.includes('\u0000')) return 'it contains NUL characters';
  if (/^(?:[/\\~]|[A-Za-z]:[\\/])/.test(path)) return 'it is an absolute path';
  const normal = posix.normalize(path.replace(/\\/g, '/'));
  if (normal === '..' || normal.startsWith('../')) return 'it points outside the repository';
  if (o.file && (normal === '.' || normal === './' || normal.endsWith('/')))
    return 'it names a directory, not a file';
  return undefined;
}

/** A relative path that stays inside the repository; kept exactly as written. */
export const repoPath = (o: { file?: boolean } = {}) =>
  checkedText(
    (path) => {
      const why = repoPathProblem(path, o);
      return why && `must be a path inside the repository, relative to its root (${why})`;
    },
    { max: SPEC_LIMITS.pathLength },
  );

/**
 * A storage size as Kubernetes writes a quantity: a number and a binary (Ki … Ei) or decimal
 * (k … E) unit, such as 500Mi, 1Gi or 10G; a bare number counts bytes. Kept as written.
 */
const STORAGE_SIZE = /^([0-9]{1,12}(?:\.[0-9]{1,6})?)(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
export const storageSize = checkedText((size) => {
  const m = STORAGE_SIZE.exec(size);
  if (!m)
    return 'must be a storage size as Kubernetes writes it: a number and a unit, such as 500Mi, 1Gi or 10G (Ki, Mi, Gi, Ti, Pi, Ei, or k, M, G, T, P, E)';
  if (Number(m[1]) === 0) return 'must be more than zero';
  return undefined;
});

/**
 * A duration field, kept as written (numbers become their string form, e.g. 30 → "30", still
 * meaning seconds). Checked with `durationMs`, what the deploy itself calls, on the very text that
 * is stored; `positive` refuses zero (a string says why), `max` (e.g. "5m") bounds it.
 */
export const duration = (o: { positive?: boolean | string; max: string }) => {
  const maxMs = durationMs(o.max);
  return z
    .union([z.string(), z.number()], { error: 'must be a duration such as 10s, 5m or 1h30m' })
    .transform((value, ctx) => {
      const fail = (message: string) => {
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      };
      const stored = String(value);
      const tooLong = typeof value === 'string' && textProblem(value, SPEC_LIMITS.shortText);
      if (tooLong) return fail(tooLong);
      let ms: number;
      try {
        ms = durationMs(value);
      } catch (err) {
        return fail((err as Error).message);
      }
      if (ms > maxMs) return fail(`must be at most ${o.max}`);
      if (o.positive && ms <= 0)
        return fail(typeof o.positive === 'string' ? o.positive : 'must be longer than zero');
      if (typeof value === 'number' && !storedAs(stored, ms))
        return fail('write this duration as text, such as "500ms" or "10s"');
      return stored;
    });
};

/** Whether the stored text of a duration means the same milliseconds (1e-7 becomes "1e-7"). */
function storedAs(stored: string, ms: number): boolean {
  try {
    return durationMs(stored) === ms;
  } catch {
    return false;
  }
}

/**
 * Cross-field rules must run even when one of the fields already failed (every problem is reported
 * at once), but only when the value has the right shape, since zod otherwise skips them.
 */
export const whenObject = {
  when: (p: { value: unknown }) =>
    typeof p.value === 'object' && p.value !== null && !Array.isArray(p.value),
};
export const whenArray = { when: (p: { value: unknown }) => Array.isArray(p.value) };

/** Items of a list that repeat an earlier one (by `keyOf`), each reported at its own index. */
export function noRepeats<T>(
  keyOf: (item: T) => string | undefined,
  message: (first: number) => string,
  at: PropertyKey[] = [],
) {
  return (list: T[], ctx: z.RefinementCtx) => {
    const seen = new Map<string, number>();
    list.forEach((item, index) => {
      const key = keyOf(item);
      if (key === undefined) return;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, index);
      else ctx.addIssue({ code: 'custom', path: [index, ...at], message: message(first) });
    });
  };
}
