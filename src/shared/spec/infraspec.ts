/**
 * Entry point for infraspecs: `parseInfraspec` takes YAML text, JSON text or an already-parsed object
 * and returns either the spec with defaults applied or every problem found, all at once, each with
 * a path and a message an operator can act on. Nothing here throws for bad input.
 *
 * @example
 * const result = parseInfraspec(await readFile('infraspec.yaml', 'utf8'));
 * if (!result.ok) throw new NornError('SPEC_INVALID', formatProblems(result.problems));
 */
import { InfraspecSchema, type Infraspec } from './schema.js';
import {
  describeValue,
  formatPath,
  issuesToProblems,
  plainMessages,
  type SpecProblem,
} from './problems.js';
import { readYaml } from './read-yaml.js';
import { sizeProblem } from './size.js';

export { InfraspecSchema, TARGETS } from './schema.js';
export type { DeployTarget, Infraspec, InfraspecProcess, InfraspecVolume } from './schema.js';
export { formatProblems, type SpecProblem } from './problems.js';
export { durationMs, parseDuration } from './durations.js';
export { healthUrl, portRange, replicaPort, servingProcess } from './derive.js';
export { SPEC_LIMITS } from './limits.js';
export { DEFAULT_TIME_ZONE, schedulerRepeat } from './schedule.js';
export { deployRefProblem } from './remote.js';
export { repoPathProblem } from './fields.js';

export type ParseResult = { ok: true; spec: Infraspec } | { ok: false; problems: SpecProblem[] };

/** Accepts YAML text, JSON text, or an already-parsed object. A string is always read as text. */
export function parseInfraspec(input: string | unknown): ParseResult {
  let value: unknown = input;
  const problems: SpecProblem[] = [];
  if (typeof input === 'string') {
    const read = readYaml(input);
    if (!read.ok) return { ok: false, problems: [read.problem] };
    value = read.value;
    problems.push(...read.problems);
  }
  const notMapping = mappingProblem(value);
  if (notMapping) return { ok: false, problems: [...problems, notMapping] };
  // Before zod walks it: YAML aliases can expand a small text into a huge or cyclic value.
  const tooBig = sizeProblem(
    value,
    'once read (as JSON, with YAML aliases and merge keys expanded)',
  );
  if (tooBig) return { ok: false, problems: [tooBig] };

  const result = InfraspecSchema.safeParse(value, { error: plainMessages });
  if (!result.success) problems.push(...issuesToProblems(result.error.issues, InfraspecSchema));
  addProtoKeyProblems(value, problems);
  if (!result.success || problems.length > 0) return { ok: false, problems };
  // What is stored, and parsed again by every deploy step, must pass the same limit.
  const stored = sizeProblem(result.data, 'as stored (as JSON, with defaults filled in)');
  if (stored) return { ok: false, problems: [stored] };
  return { ok: true, spec: result.data };
}

function mappingProblem(value: unknown): SpecProblem | undefined {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return undefined;
  const got = value === null || value === undefined ? 'is empty' : `is ${describeValue(value)}`;
  return {
    path: '',
    message: `an infraspec must be a mapping of keys such as name, repo and processes, but this document ${got}`,
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
