/**
 * Reads a SOPS document in one of the formats sops writes into the ordered tree, the way sops's own
 * stores do (yaml.v3, encoding/json, its dotenv store, go-ini), and splits off the `sops` metadata.
 * Comments are dropped: the MAC never covers them. Parse errors carry positions, never text.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Document,
} from 'yaml';
import { parseIni } from './sops-ini.js';
import { parseOrderedJson } from './sops-json.js';
import {
  sopsError,
  splitMetadata,
  toPlain,
  TreeBranch,
  unflatten,
  type TreeValue,
} from './sops-tree.js';

export type SopsFormat = 'yaml' | 'json' | 'dotenv' | 'ini';

export interface ParsedDocument {
  data: TreeBranch;
  /** The `sops` metadata as plain JS, or undefined when the document has none. */
  metadata: unknown;
}

export function parseDocument(text: string, format: SopsFormat): ParsedDocument {
  switch (format) {
    case 'yaml':
      return fromBranch(parseYaml(text));
    case 'json':
      return fromBranch(parseJsonTop(text));
    case 'dotenv':
      return parseDotenv(text);
    case 'ini':
      return parseIniDocument(text);
    default:
      throw sopsError(
        'unsupported',
        `unknown SOPS file format '${String(format)}' (use yaml, json, dotenv or ini)`,
      );
  }
}

function fromBranch(branch: TreeBranch): ParsedDocument {
  const { data, metadata } = splitMetadata(branch);
  return { data, metadata: metadata === undefined ? undefined : toPlain(metadata) };
}

function parseJsonTop(text: string): TreeBranch {
  const top = parseOrderedJson(text);
  if (!(top instanceof TreeBranch))
    throw sopsError('malformed', 'the JSON file must hold an object at the top level');
  return top;
}

/** Alias expansion is bounded: a "billion laughs" file must not exhaust memory. */
const MAX_YAML_NODES = 200_000;

function parseYaml(text: string): TreeBranch {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, {
    intAsBigInt: true, // int64 values beyond 2^53 must hash exactly as Go prints them
    merge: false, // sops (yaml.v3 nodes) keeps `<<` as an ordinary key
    uniqueKeys: true, // yaml.v3 refuses duplicate keys when sops reads the metadata
    prettyErrors: false,
    lineCounter,
  });
  const docs = Array.isArray(parsed) ? parsed : [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      throw sopsError(
        'malformed',
        `the file is not valid YAML (${error.code} at line ${line}, column ${col})`,
      );
    }
  }
  const nonEmpty = docs.filter(
    (doc) => !(doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)),
  );
  if (nonEmpty.length > 1)
    throw sopsError('unsupported', 'multi-document YAML SOPS files are not supported');
  const doc = nonEmpty[0];
  if (!doc) return new TreeBranch();
  const top = yamlValue(doc.contents, doc, { nodes: 0 });
  if (!(top instanceof TreeBranch))
    throw sopsError('malformed', 'the YAML document must be a mapping at the top level');
  return top;
}

function yamlValue(node: unknown, doc: Document, budget: { nodes: number }): TreeValue {
  if (++budget.nodes > MAX_YAML_NODES)
    throw sopsError('malformed', 'the YAML file expands to too many nodes (alias bomb?)');
  if (node === null || node === undefined) return null;
  if (isAlias(node)) return yamlValue(node.resolve(doc), doc, budget);
  if (isMap(node)) {
    const branch = new TreeBranch();
    for (const pair of node.items) {
      const key = yamlValue(pair.key, doc, budget);
      branch.items.push([String(key), yamlValue(pair.value, doc, budget)]);
    }
    return branch;
  }
  if (isSeq(node)) return node.items.map((item) => yamlValue(item, doc, budget));
  if (isScalar(node)) {
    const value = node.value;
    if (value === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof value))
      return value as TreeValue;
    return String(value);
  }
  throw sopsError('malformed', 'the YAML file holds a node kind SOPS does not support');
}

/**
 * sops's dotenv store: one KEY=VALUE per line, split at the first `=`, nothing trimmed, `\n` escapes
 * decoded; `#` lines are comments; `sops_*` keys hold the flattened metadata.
 */
function parseDotenv(text: string): ParsedDocument {
  const data = new TreeBranch();
  const flat = new Map<string, string>();
  text.split('\n').forEach((line, index) => {
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq === -1)
      throw sopsError(
        'malformed',
        `line ${index + 1} of the dotenv file is neither a comment nor KEY=VALUE`,
      );
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).replaceAll('\\n', '\n');
    if (key.startsWith('sops_')) flat.set(key.slice('sops_'.length), value.replaceAll('\\n', '\n'));
    else data.items.push([key, value]);
  });
  return { data, metadata: flat.size === 0 ? undefined : unflatten(flat) };
}

function parseIniDocument(text: string): ParsedDocument {
  const data = new TreeBranch();
  let metadata: unknown;
  for (const [name, keys] of parseIni(text)) {
    if (name === 'sops') {
      const flat = new Map<string, string>();
      for (const [key, value] of keys) flat.set(key, value.replaceAll('\\n', '\n'));
      metadata = unflatten(flat);
    } else if (name !== 'DEFAULT' || keys.length > 0) {
      data.items.push([name, new TreeBranch(keys)]);
    }
  }
  return { data, metadata };
}
