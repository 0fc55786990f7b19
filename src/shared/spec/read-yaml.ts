/**
 * Reads infraspec text (YAML, or JSON, which YAML 1.2 reads as well) into plain values, finding the
 * problems that only the text can show: syntax errors with their position and duplicate keys (which
 * the YAML library would otherwise resolve silently by keeping the last one).
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import { formatPath, type SpecProblem } from './problems.js';

export type YamlRead =
  { ok: true; value: unknown; problems: SpecProblem[] } | { ok: false; problem: SpecProblem };

export function readYaml(text: string): YamlRead {
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
    return {
      ok: false,
      problem: { path: '', message: `YAML syntax error at line ${line}, column ${col}: ${what}` },
    };
  }
  const problems: SpecProblem[] = [];
  walk(doc.contents, [], { lineCounter, problems });
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }), problems };
  } catch (err) {
    // e.g. an alias bomb ("billion laughs") or an alias to an undefined anchor.
    return {
      ok: false,
      problem: { path: '', message: `YAML could not be read: ${(err as Error).message}` },
    };
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
