/**
 * Reads infraspec text (YAML, or JSON, which YAML 1.2 reads as well) into plain values, finding the
 * problems that only the text can show: syntax errors with their position and duplicate keys (which
 * the YAML library would otherwise resolve silently by keeping the last one).
 *
 * Hostile text is bounded before the library builds anything from it: its size, how deep flow
 * collections nest (the parser spends seconds on `[[[[…` and then overflows its stack), and how
 * much aliases may expand (`maxAliasCount`: a "billion laughs" document is refused).
 */
import { isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import { formatBytes, SPEC_LIMITS } from './limits.js';
import { formatPath, type SpecProblem } from './problems.js';

export type YamlRead =
  { ok: true; value: unknown; problems: SpecProblem[] } | { ok: false; problem: SpecProblem };

/**
 * How many times aliases may be resolved, weighted by how many aliases their anchor holds in turn.
 * Sharing a block of settings between a few dozen processes stays far below it.
 */
export const MAX_ALIAS_COUNT = 100;

const refuse = (message: string): YamlRead => ({ ok: false, problem: { path: '', message } });

/** Why the text is too big or nests too deep to be parsed, or undefined. */
function textProblem(text: string): string | undefined {
  const bytes = Buffer.byteLength(text);
  if (bytes > SPEC_LIMITS.textBytes)
    return `the infraspec text is ${formatBytes(bytes)}; at most ${formatBytes(SPEC_LIMITS.textBytes)} is allowed`;
  let depth = 0;
  // The lexer is cheap and exact: a bracket inside a quoted or plain scalar is not a token.
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') depth++;
    else if (token === ']' || token === '}') depth--;
    if (depth > SPEC_LIMITS.flowDepth)
      return `the infraspec nests [ ] and { } more than ${SPEC_LIMITS.flowDepth} levels deep`;
  }
  return undefined;
}

export function readYaml(text: string): YamlRead {
  const unreadable = textProblem(text);
  if (unreadable) return refuse(unreadable);
  const lineCounter = new LineCounter();
  // merge: `<<: *defaults` is how operators share settings between processes.
  const doc = parseDocument(text, {
    uniqueKeys: false,
    merge: true,
    prettyErrors: false,
    lineCounter,
  });
  const error = doc.errors[0];
  if (error) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    // The library's own wording, without the source excerpt (it may show env values).
    const what = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return refuse(`YAML syntax error at line ${line}, column ${col}: ${what}`);
  }
  const problems: SpecProblem[] = [];
  walk(doc.contents, [], { lineCounter, problems });
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), problems };
  } catch (err) {
    // e.g. an alias bomb ("billion laughs") or an alias to an undefined anchor.
    return refuse(`YAML could not be read: ${(err as Error).message}`);
  }
}

interface WalkContext {
  lineCounter: LineCounter;
  problems: SpecProblem[];
}

/** Reports duplicate keys and keeps env values as written; aliases are not followed (no cycles). */
function walk(node: unknown, path: PropertyKey[], ctx: WalkContext): void {
  if (isSeq(node)) {
    node.items.forEach((item, index) => walk(item, [...path, index], ctx));
    return;
  }
  if (!isMap(node)) return; // scalars and aliases: nothing to check
  const firstLine = new Map<string, number>();
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const line = ctx.lineCounter.linePos(isScalar(pair.key) ? (pair.key.range?.[0] ?? 0) : 0).line;
    const first = firstLine.get(key);
    if (first !== undefined && key !== '<<') {
      ctx.problems.push({
        path: formatPath([...path, key]),
        message: `duplicate key (line ${line}); it is already set on line ${first}, keep only one`,
      });
    }
    if (first === undefined) firstLine.set(key, line);
    if (key === 'env' && isMap(pair.value)) keepSourceText(pair.value);
    walk(pair.value, [...path, key], ctx);
  }
}

/**
 * Env values are strings to the process, so `VERSION: 1.10` must stay "1.10" rather than become the
 * number 1.1, and `MASK: 0x1F` must not become "31". Plain (unquoted) numbers and booleans are
 * replaced by their source text; quoted values are strings already.
 */
function keepSourceText(env: YAMLMap): void {
  for (const pair of env.items) {
    const value = pair.value;
    if (!isScalar(value) || value.source === undefined) continue;
    if (typeof value.value === 'number' || typeof value.value === 'boolean')
      value.value = value.source;
  }
}
