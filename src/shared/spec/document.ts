/**
 * How every spec document norn takes is read (the infraspec, a stack): YAML text, JSON text or an
 * already-parsed object in, either the value with defaults applied or every problem found out, all
 * at once, each with a path. Nothing here throws for bad input.
 */
import type { z } from 'zod';
import {
  describeValue,
  formatPath,
  issuesToProblems,
  plainMessages,
  type SpecProblem,
} from './problems.js';
import { readYaml } from './read-yaml.js';
import { sizeProblem } from './size.js';

export type DocumentResult<T> = { ok: true; value: T } | { ok: false; problems: SpecProblem[] };

/**
 * Parses `input` with `schema`. `mapping` names the keys a document of this kind has, for the
 * message when the document is not a mapping at all ("name, repo and processes").
 */
export function parseDocument<S extends z.ZodType>(
  input: string | unknown,
  schema: S,
  o: { noun: string; mapping: string },
): DocumentResult<z.output<S>> {
  let value: unknown = input;
  const problems: SpecProblem[] = [];
  if (typeof input === 'string') {
    const read = readYaml(input);
    if (!read.ok) return { ok: false, problems: [read.problem] };
    value = read.value;
    problems.push(...read.problems);
  }
  const notMapping = mappingProblem(value, o);
  if (notMapping) return { ok: false, problems: [...problems, notMapping] };
  // Before zod walks it: YAML aliases can expand a small text into a huge or cyclic value.
  const tooBig = sizeProblem(
    value,
    'once read (as JSON, with YAML aliases and merge keys expanded)',
  );
  if (tooBig) return { ok: false, problems: [tooBig] };

  const result = schema.safeParse(value, { error: plainMessages });
  if (!result.success) problems.push(...issuesToProblems(result.error.issues, schema));
  addProtoKeyProblems(value, problems);
  if (!result.success || problems.length > 0) return { ok: false, problems };
  // What is stored, and parsed again by every step, must pass the same limit.
  const stored = sizeProblem(result.data, 'as stored (as JSON, with defaults filled in)');
  if (stored) return { ok: false, problems: [stored] };
  return { ok: true, value: result.data };
}

function mappingProblem(value: unknown, o: { noun: string; mapping: string }) {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return undefined;
  const got = value === null || value === undefined ? 'is empty' : `is ${describeValue(value)}`;
  return {
    path: '',
    message: `${o.noun} must be a mapping of keys such as ${o.mapping}, but this document ${got}`,
  };
}

/**
 * zod leaves `__proto__` keys out of maps (a prototype-pollution guard), which would drop e.g. an
 * env var of that name without a word. Report them instead, replacing any other problem at the
 * same path. `seen` guards against cyclic input (YAML aliases can build cycles).
 */
function addProtoKeyProblems(value: unknown, problems: SpecProblem[]): void {
  const found: SpecProblem[] = [];
  const seen = new Set<object>();
  const visit = (node: unknown, path: PropertyKey[]): void => {
    if (typeof node !== 'object' || node === null || seen.has(node)) return;
    seen.add(node);
    if (Object.hasOwn(node, '__proto__')) {
      found.push({
        path: formatPath([...path, '__proto__']),
        message: 'the key "__proto__" is not allowed',
      });
    }
    for (const [key, child] of Object.entries(node))
      visit(child, [...path, Array.isArray(node) ? Number(key) : key]);
  };
  visit(value, []);
  if (found.length === 0) return;
  const paths = new Set(found.map((p) => p.path));
  const kept = problems.filter((p) => !paths.has(p.path));
  problems.splice(0, problems.length, ...kept, ...found);
}
