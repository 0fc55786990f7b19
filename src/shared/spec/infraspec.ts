/**
 * Entry point for infraspecs: `parseInfraspec` takes YAML text, JSON text or an already-parsed object
 * and returns either the spec with defaults applied or every problem found, all at once, each with
 * a path and a message an operator can act on. Nothing here throws for bad input.
 *
 * @example
 * const result = parseInfraspec(await readFile('infraspec.yaml', 'utf8'));
 * if (!result.ok) throw new NornError('SPEC_INVALID', formatProblems(result.problems));
 */
import { parseDocument } from './document.js';
import { InfraspecSchema, type Infraspec } from './schema.js';
import type { SpecProblem } from './problems.js';

export { InfraspecSchema, TARGETS } from './schema.js';
export type { DeployTarget, Infraspec, InfraspecProcess, InfraspecVolume } from './schema.js';
export { formatProblems, type SpecProblem } from './problems.js';
export { durationMs, parseDuration } from './durations.js';
export { healthUrl, servedPort, servingProcess } from './derive.js';
export { SPEC_LIMITS } from './limits.js';
export { DEFAULT_TIME_ZONE, schedulerRepeat } from './schedule.js';
export { deployRefProblem } from './remote.js';
export { repoPathProblem } from './fields.js';

export type ParseResult = { ok: true; spec: Infraspec } | { ok: false; problems: SpecProblem[] };

/** Accepts YAML text, JSON text, or an already-parsed object. A string is always read as text. */
export function parseInfraspec(input: string | unknown): ParseResult {
  const read = parseDocument(input, InfraspecSchema, {
    noun: 'an infraspec',
    mapping: 'name, repo and processes',
  });
  return read.ok ? { ok: true, spec: read.value } : read;
}
