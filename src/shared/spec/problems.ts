/**
 * Turns zod issues into SpecProblems an operator can act on: a readable path (`processes.web.port`,
 * `endpoints[0].url`), plain-English messages, one problem per unknown key with a "did you mean"
 * suggestion. Messages describe the kind of a wrong value, never the value itself.
 */
import { z } from 'zod';

export interface SpecProblem {
  /** Where the problem is, e.g. `processes.web.port` or `endpoints[0].url`; `""` for the whole document. */
  path: string;
  message: string;
}

/** `["processes", "web", "port"]` → `processes.web.port`; odd keys are quoted: `env["A.B"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(String(segment))) out += `${out ? '.' : ''}${String(segment)}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** One line per problem, for logs and CLI output. */
export function formatProblems(problems: readonly SpecProblem[]): string {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n');
}

export function describeValue(value: unknown): string {
  if (value === null) return 'an empty value (null)';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'text';
    case 'number':
      if (Number.isNaN(value)) return 'not-a-number';
      return Number.isInteger(value)
        ? 'a whole number'
        : Number.isFinite(value)
          ? 'a fraction'
          : 'infinity';
    case 'boolean':
      return `${value}`;
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value pairs)',
  record: 'a mapping (key: value pairs)',
  array: 'a list',
};

/** Per-parse zod error map: messages for the issues our schema does not word itself. */
export const plainMessages: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, not ${describeValue(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
      if (issue.origin === 'number')
        return `must be ${issue.inclusive ? 'at least' : 'more than'} ${issue.minimum}`;
      return `must have at least ${issue.minimum} ${issue.origin === 'string' ? 'characters' : 'entries'}`;
    case 'too_big':
      if (issue.origin === 'number')
        return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`;
      return `must have at most ${issue.maximum} ${issue.origin === 'string' ? 'characters' : 'entries'}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return undefined;
  }
};

/** Optimal string alignment distance: like Levenshtein, but a swap of two letters costs 1. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [
    i,
    ...Array<number>(b.length).fill(0),
  ]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known key within distance 2 (case-insensitive), if it is not a wild guess. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance && distance < key.length)
      [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    if (
      current instanceof z.ZodOptional ||
      current instanceof z.ZodDefault ||
      current instanceof z.ZodPrefault ||
      current instanceof z.ZodNullable
    ) {
      current = current.unwrap() as z.ZodType;
    } else if (current instanceof z.ZodPipe) {
      current = current.in as z.ZodType;
    } else {
      return current;
    }
  }
}

/** The keys an object schema accepts at `path`, for suggestions; empty when there is no object there. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current = unwrap(schema);
  for (const segment of path) {
    if (current instanceof z.ZodObject) {
      const next = (current.shape as Record<string, z.ZodType>)[String(segment)];
      if (!next) return [];
      current = next;
    } else if (current instanceof z.ZodRecord) {
      current = current.valueType as z.ZodType;
    } else if (current instanceof z.ZodArray) {
      current = current.element as z.ZodType;
    } else {
      return [];
    }
    current = unwrap(current);
  }
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const suggestion = suggestKey(key, known);
  if (suggestion) return `unknown key (did you mean "${suggestion}"?)`;
  return known.length > 0 ? `unknown key; expected one of ${known.join(', ')}` : 'unknown key';
}

/** Flattens zod issues into problems; `schema` is the one that was parsed (for key suggestions). */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  schema: z.ZodType,
): SpecProblem[] {
  const problems: SpecProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path);
      for (const key of issue.keys)
        problems.push({
          path: formatPath([...issue.path, key]),
          message: unknownKeyMessage(key, known),
        });
    } else if (issue.code === 'invalid_key') {
      // The key itself is wrong (e.g. a bad process name); the inner issue says why.
      const why = issue.issues[0]?.message ?? issue.message;
      problems.push({ path: formatPath(issue.path), message: `is not a valid key: ${why}` });
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  const seen = new Set<string>();
  return problems.filter((p) => {
    const id = `${p.path}\u0000${p.message}`;
    return seen.has(id) ? false : (seen.add(id), true);
  });
}
