/**
 * How big an infraspec is as JSON, counted without building the JSON, and stopping as soon as it
 * passes the limit: YAML aliases can make a small text expand into a huge value (or a cyclic one),
 * and nothing should walk, store or hand to Docker more than SPEC_LIMITS.specBytes.
 */
import { formatPath, type SpecProblem } from './problems.js';
import { formatBytes, LONGEST_STRING, SPEC_LIMITS } from './limits.js';

/** A value to visit; its path is rebuilt from the parent links only when a problem names it. */
type Entry = { value: unknown; key?: PropertyKey; parent?: Entry };

function pathOf(entry: Entry): PropertyKey[] {
  const path: PropertyKey[] = [];
  for (let e: Entry | undefined = entry; e?.parent; e = e.parent) path.unshift(e.key!);
  return path;
}

/** Bytes `value` adds as JSON, not counting its children; strings are UTF-8. */
function ownBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value) + 2;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value).length;
  if (value === null || value === undefined) return 4;
  return 2; // brackets; keys and commas are counted with the children
}

/**
 * The problem with `value`'s size, or undefined: a string longer than any field takes (named by
 * its path, as its field would), or more than `limit` bytes in all. `stage` says which form of
 * the spec was measured, for the message.
 */
export function sizeProblem(
  value: unknown,
  stage: string,
  limit: number = SPEC_LIMITS.specBytes,
): SpecProblem | undefined {
  const stack: Entry[] = [{ value }];
  let total = 0;
  while (stack.length > 0) {
    const entry = stack.pop()!;
    const node = entry.value;
    if (typeof node === 'string' && node.length > LONGEST_STRING) {
      return {
        path: formatPath(pathOf(entry)),
        message: `is ${formatBytes(Buffer.byteLength(node))} long; no text in an infraspec may be longer than ${LONGEST_STRING} characters`,
      };
    }
    total += ownBytes(node);
    if (typeof node === 'object' && node !== null) {
      const isList = Array.isArray(node);
      for (const [key, child] of Object.entries(node)) {
        total += 1 + (isList ? 0 : Buffer.byteLength(key) + 3); // comma, "key":
        stack.push({ value: child, key: isList ? Number(key) : key, parent: entry });
      }
    }
    if (total > limit) {
      const message = hasCycle(value)
        ? 'a YAML alias refers to a collection it is itself inside of, so the infraspec never ends'
        : `the infraspec is larger than ${formatBytes(limit)} ${stage}; that is the most an infraspec may be`;
      return { path: '', message };
    }
  }
  return undefined;
}

/** Whether a collection contains itself (only YAML aliases can build that). */
function hasCycle(value: unknown, inside = new Set<object>(), done = new Set<object>()): boolean {
  if (typeof value !== 'object' || value === null || done.has(value)) return false;
  if (inside.has(value)) return true;
  inside.add(value);
  const found = Object.values(value).some((child) => hasCycle(child, inside, done));
  inside.delete(value);
  done.add(value);
  return found;
}
