/**
 * The ordered tree SOPS works on, and the error helper every SOPS module shares.
 *
 * Order matters: the SOPS MAC is a hash over the values in document order, so a plain JS object
 * (which moves integer-like keys to the front) cannot stand in for a mapping. Duplicate keys stay
 * as separate items, as they do in sops's own TreeBranch.
 */
import { NornError } from '../errors.js';

export type Leaf = string | number | bigint | boolean | null;
export type TreeValue = Leaf | TreeBranch | TreeValue[];

export class TreeBranch {
  constructor(readonly items: Array<readonly [string, TreeValue]> = []) {}
}

/** Why a SOPS document was refused; callers can branch on `details.reason`. */
export type SopsFailure =
  'not-sops' | 'malformed' | 'unsupported' | 'no-key' | 'mac-mismatch' | 'not-flat';

/** Every refusal is SECRETS_INVALID and never retryable: the same file fails the same way again. */
export function sopsError(
  reason: SopsFailure,
  message: string,
  details: Record<string, unknown> = {},
): NornError {
  return new NornError('SECRETS_INVALID', message, { details: { reason, ...details } });
}

/** A value (already decrypted) as plain JS; big integers beyond 2^53 become decimal strings. */
export type PlainValue =
  string | number | boolean | null | Uint8Array | PlainValue[] | { [key: string]: PlainValue };

/** Sets a property without letting a key named `__proto__` reach the prototype. */
export function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** Converts an (undecrypted) subtree to plain JS, e.g. the `sops` metadata branch. */
export function toPlain(value: TreeValue): unknown {
  if (value instanceof TreeBranch) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of value.items) defineKey(out, key, toPlain(item));
    return out;
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/** Splits the top-level `sops` item(s) off a document branch, as every sops store does. */
export function splitMetadata(branch: TreeBranch): {
  data: TreeBranch;
  metadata: TreeValue | undefined;
} {
  let metadata: TreeValue | undefined;
  const data = new TreeBranch();
  for (const item of branch.items) {
    if (item[0] === 'sops') metadata = item[1];
    else data.items.push(item);
  }
  return { data, metadata };
}

const MAP_SEPARATOR = '__map_';
const LIST_SEPARATOR = '__list_';

/**
 * Rebuilds nested metadata from the flat keys the dotenv and INI stores write
 * (`age__list_0__map_recipient` → `{ age: [{ recipient }] }`), mirroring sops's stores.Unflatten.
 */
export function unflatten(flat: ReadonlyMap<string, string>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [flatKey, value] of flat) {
    const tokens = tokenize(flatKey);
    let node: Record<string, unknown> | unknown[] = root;
    tokens.forEach((token, index) => {
      const last = index === tokens.length - 1;
      const next = tokens[index + 1];
      const existing = Array.isArray(node) ? node[token as number] : node[token as string];
      const reuse = typeof existing === 'object' && existing !== null;
      const child = last ? value : reuse ? existing : typeof next === 'number' ? [] : {};
      if (Array.isArray(node)) node[token as number] = child;
      else defineKey(node, token as string, child);
      if (!last) node = child as Record<string, unknown> | unknown[];
    });
  }
  return root;
}

function tokenize(path: string): Array<string | number> {
  const tokens: Array<string | number> = [];
  const parts = path.split(/(?=__map_|__list_)/);
  for (const part of parts) {
    if (part.startsWith(LIST_SEPARATOR))
      tokens.push(Number.parseInt(part.slice(LIST_SEPARATOR.length), 10) || 0);
    else if (part.startsWith(MAP_SEPARATOR)) tokens.push(part.slice(MAP_SEPARATOR.length));
    else tokens.push(part);
  }
  return tokens;
}
