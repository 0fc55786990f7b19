/**
 * Loads the root module from `*.tf.json` files (OpenTofu's JSON configuration syntax) and checks
 * it in two passes, as OpenTofu does: `structure` here (what init already refuses: syntax, unknown
 * top-level keys) and schema.mjs (what validate/plan refuse: arguments against local_file's schema).
 * Override files merge into the primary files (https://opentofu.org/docs/language/files/override/):
 * a backend block replaces the primary files' backend, a resource's arguments replace the same
 * resource's. Of backends, only `local` with `path` is supported (its state handling: state.mjs).
 * Native-syntax files (.tf, .tofu) make the stand-in refuse outright: it has no HCL parser.
 * Diagnostic wording is OpenTofu's / HCL's / the provider's (cited where each is made).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonSource, propsOf, SyntaxDiag } from './json-source.mjs';
import { err, extraneous, notAnObject } from './diags.mjs';

/** configs.IsIgnoredFile in OpenTofu: dotfiles, editor backups (~) and #autosave# files. */
export const isIgnoredFile = (name) =>
  name.startsWith('.') || name.endsWith('~') || (name.startsWith('#') && name.endsWith('#'));

const NATIVE = ['.tf', '.tofu'];

export class StandinRefusal extends Error {}

/** Reads every configuration file of `dir` (not recursive: one module). */
export function readModule(dir) {
  const names = readdirSync(dir)
    .filter((n) => !isIgnoredFile(n))
    .sort();
  const native = names.filter((n) => NATIVE.some((ext) => n.endsWith(ext)));
  if (native.length > 0) {
    throw new StandinRefusal(
      `The tofu stand-in reads only JSON configuration (*.tf.json); found ${native.join(', ')}. ` +
        'Run real OpenTofu for native-syntax configuration.',
    );
  }
  const files = names
    .filter((n) => n.endsWith('.tf.json') || n.endsWith('.tofu.json'))
    .map((name) => ({ name, src: readFileSync(join(dir, name), 'utf8') }));
  return files;
}

/** sha256 over the files' names and bytes: what a saved plan was made from. */
export function configHash(files) {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.name}\0${f.src}\0`);
  return h.digest('hex');
}

/**
 * Override files (configs/parser_config_dir.go): `override.tf.json` and `*_override.tf.json` (and
 * the .tofu.json forms) are merged into the module after all the primary files.
 */
export const isOverrideFile = (name) => {
  const base = name.replace(/\.(tf|tofu)\.json$/, '');
  return base === 'override' || base.endsWith('_override');
};

/**
 * The structure pass: syntax and top-level blocks, primary files first and then override files
 * merged into them (configs/module.go appendFile and mergeFile). Returns {resources, diags,
 * backend, backendDiags}: `backend` is the effective backend block or null, and `backendDiags`
 * what configuring it refuses, which init, plan and apply report but validate does not (tofu
 * validate never configures the backend).
 */
export function structure(files) {
  const diags = [];
  const primary = [];
  const overrides = [];
  for (const file of files) {
    const parsed = fileBlocks(file, diags);
    if (parsed) (isOverrideFile(file.name) ? overrides : primary).push(parsed);
  }
  const resources = [];
  const byAddress = new Map();
  let backend = null;
  for (const f of primary) {
    for (const b of f.backends) {
      if (backend) {
        diags.push(
          err(
            'Duplicate backend configuration',
            `A module may have only one backend configuration. The backend was previously configured at ${rangeString(backend.declRange)}.`,
            b.declRange,
          ),
        );
        continue;
      }
      backend = b;
    }
    for (const res of f.resources) {
      const existing = byAddress.get(res.address);
      if (existing) {
        diags.push(
          err(
            `Duplicate resource "${res.type}" configuration`,
            `A ${res.type} resource named "${res.name}" was already declared at ${rangeString(openBrace(existing.body.range))}. Resource names must be unique per type in each module.`,
            openBrace(res.body.range),
          ),
        );
        continue;
      }
      byAddress.set(res.address, res);
      resources.push(res);
    }
  }
  for (const f of overrides) {
    if (f.backends.length === 1) backend = f.backends[0];
    else if (f.backends.length > 1)
      diags.push(
        err(
          'Duplicate backend configuration',
          `Each override file may have only one backend configuration. A backend was previously configured at ${rangeString(f.backends[0].declRange)}.`,
          f.backends[1].declRange,
        ),
      );
    for (const res of f.resources) {
      const existing = byAddress.get(res.address);
      if (!existing) {
        diags.push(
          err(
            'Missing resource to override',
            `There is no ${res.type} resource named "${res.name}". An override file can only override a resource block defined in a primary configuration file.`,
            openBrace(res.body.range),
          ),
        );
        continue;
      }
      mergeResource(existing, res);
    }
  }
  const backendDiags = [];
  return {
    resources,
    diags,
    backend: backend && decodeBackend(backend, backendDiags),
    backendDiags,
  };
}

/**
 * configs/module_merge.go Resource.merge with module_merge_body.go: each argument the override
 * sets replaces the primary's. (Nested blocks would replace all blocks of their type; local_file
 * has none the stand-in accepts, and meta-arguments are refused whichever file sets them.)
 */
function mergeResource(base, override) {
  const set = new Set(propsOf(override.body).map((p) => p.key));
  const kept = propsOf(base.body).filter((p) => !set.has(p.key));
  base.body = {
    kind: 'object',
    props: [...kept, ...propsOf(override.body).filter((p) => p.key !== '//')],
    range: base.body.range,
  };
}

/** One file's top-level blocks: {resources, backends}, or undefined when it does not parse. */
function fileBlocks(file, diags) {
  let root;
  try {
    root = parseJsonSource(file.src, file.name);
  } catch (e) {
    if (e instanceof SyntaxDiag) {
      diags.push(e.diag);
      return undefined;
    }
    throw e;
  }
  const resources = [];
  const backends = [];
  for (const { key, keyRange, value } of propsOf(root)) {
    if (key === '//') continue; // JSON syntax: a "//" property is a comment
    if (key === 'resource') resources.push(...resourceBlocks(value, diags));
    else if (key === 'terraform') terraformBlock(value, diags, backends);
    else if (key === 'provider') providerBlock(value, diags);
    else if (
      [
        'variable',
        'output',
        'locals',
        'data',
        'module',
        'moved',
        'import',
        'check',
        'removed',
      ].includes(key)
    )
      diags.push(
        err(
          'Unsupported block type (tofu stand-in)',
          `The tofu stand-in supports only resource, terraform and provider blocks, not "${key}".`,
          keyRange,
        ),
      );
    else diags.push(extraneous(key, keyRange));
  }
  return { resources, backends };
}

function resourceBlocks(node, diags) {
  const out = [];
  for (const { key: type, keyRange: typeRange, value: byName } of propsOf(node)) {
    if (type === '//') continue;
    for (const { key: name, keyRange, value: body } of propsOf(byName)) {
      if (name === '//') continue;
      if (body.kind !== 'object' && body.kind !== 'array') {
        diags.push(notAnObject(body.range));
        continue;
      }
      out.push({ type, name, address: `${type}.${name}`, typeRange, nameRange: keyRange, body });
    }
  }
  return out;
}

function terraformBlock(node, diags, backends) {
  for (const { key, keyRange, value } of propsOf(node)) {
    if (key === 'required_version' || key === '//') continue;
    if (key === 'required_providers') {
      for (const p of propsOf(value)) {
        const source = propsOf(p.value).find((x) => x.key === 'source')?.value.value;
        if (
          p.key !== 'local' ||
          (source && !/^(registry\.opentofu\.org\/)?hashicorp\/local$/.test(source))
        )
          diags.push(
            err(
              'Provider not available (tofu stand-in)',
              `The tofu stand-in has only the hashicorp/local provider, not "${source ?? p.key}".`,
              p.keyRange,
            ),
          );
      }
      continue;
    }
    if (key === 'backend') {
      // A block with one label, the backend type: {"backend": {"local": {...}}}.
      for (const { key: type, keyRange: typeRange, value: body } of propsOf(value)) {
        if (type === '//') continue;
        if (body.kind !== 'object') {
          diags.push(notAnObject(body.range));
          continue;
        }
        backends.push({ type, typeRange, body, declRange: openBrace(body.range) });
      }
      continue;
    }
    diags.push(
      err(
        'Unsupported setting (tofu stand-in)',
        `The tofu stand-in keeps state with the local backend only; "terraform.${key}" is not supported.`,
        keyRange,
      ),
    );
  }
}

/** OpenTofu's backend types (backend/init/init.go), removed ones included: all but local are beyond the stand-in. */
const OTHER_BACKENDS = [
  'remote',
  'azurerm',
  'consul',
  'cos',
  'gcs',
  'http',
  'kubernetes',
  'oss',
  'pg',
  's3',
  'artifactory',
  'azure',
  'etcd',
  'etcdv3',
  'manta',
  'swift',
];

/**
 * The local backend's configuration (backend/local/backend.go: `path`, `workspace_dir`). Returns
 * {type, path} (path null: the default, terraform.tfstate); what it refuses goes to `diags`.
 */
function decodeBackend(b, diags) {
  if (b.type !== 'local') {
    diags.push(
      OTHER_BACKENDS.includes(b.type)
        ? err(
            'Unsupported setting (tofu stand-in)',
            `The tofu stand-in keeps state with the local backend only; backend "${b.type}" is not supported.`,
            b.typeRange,
          )
        : err(
            'Unsupported backend type',
            `There is no backend type named "${b.type}".`,
            b.typeRange,
          ),
    );
    return { type: b.type, path: null };
  }
  let path = null;
  for (const { key, keyRange, value } of propsOf(b.body)) {
    if (key === '//') continue;
    if (key === 'workspace_dir') {
      diags.push(
        err(
          'Unsupported setting (tofu stand-in)',
          'The tofu stand-in has only the default workspace; "workspace_dir" of the local backend is not supported.',
          keyRange,
        ),
      );
      continue;
    }
    if (key !== 'path') {
      diags.push(extraneous(key, keyRange));
      continue;
    }
    if (value.kind === 'null') path = null;
    else if (value.kind === 'object' || value.kind === 'array')
      diags.push(
        err(
          'Incorrect attribute value type',
          'Inappropriate value for attribute "path": string required.',
          value.range,
        ),
      );
    else if (value.kind === 'string' && value.value.includes('${'))
      diags.push(
        err(
          'Unsupported expression (tofu stand-in)',
          "The tofu stand-in takes the local backend's path as a literal string only.",
          value.range,
        ),
      );
    else if (value.value === '')
      // backend/local PrepareConfig.
      diags.push(
        err(
          'Invalid local state file path',
          'The "path" attribute value must not be empty.',
          value.range,
        ),
      );
    else path = String(value.value); // cty converts a number or bool to the string attribute
  }
  return { type: 'local', path };
}

function providerBlock(node, diags) {
  for (const { key, keyRange } of propsOf(node)) {
    if (key !== 'local' && key !== '//')
      diags.push(
        err(
          'Provider not available (tofu stand-in)',
          `The tofu stand-in has only the hashicorp/local provider, not "${key}".`,
          keyRange,
        ),
      );
  }
}

/** hcl.Range.String(): `file:line,col-col` on one line, `file:line,col-line,col` across lines. */
const rangeString = (r) =>
  r.start.line === r.end.line
    ? `${r.filename}:${r.start.line},${r.start.column}-${r.end.column}`
    : `${r.filename}:${r.start.line},${r.start.column}-${r.end.line},${r.end.column}`;

/** hcl's MissingItemRange / DeclRange of a JSON object block: its opening brace. */
const openBrace = (range) => ({
  filename: range.filename,
  start: range.start,
  end: { line: range.start.line, column: range.start.column + 1, byte: range.start.byte + 1 },
});
