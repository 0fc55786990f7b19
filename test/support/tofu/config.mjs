/**
 * Loads the root module from `*.tf.json` files (OpenTofu's JSON configuration syntax) and checks
 * it in two passes, as OpenTofu does: `structure` (what init already refuses: syntax, unknown
 * top-level keys) and `schema` (what validate/plan refuse: arguments against local_file's schema).
 * Native-syntax files (.tf, .tofu) make the stand-in refuse outright: it has no HCL parser.
 * Diagnostic wording is OpenTofu's / HCL's / the provider's (cited where each is made).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonSource, propsOf, SyntaxDiag } from './json-source.mjs';
import { ARGUMENTS, COMPUTED, CONTENT_ARGS, UNSUPPORTED_BY_STANDIN } from './local-file.mjs';

/** configs.IsIgnoredFile in OpenTofu: dotfiles, editor backups (~) and #autosave# files. */
export const isIgnoredFile = (name) =>
  name.startsWith('.') || name.endsWith('~') || (name.startsWith('#') && name.endsWith('#'));

const NATIVE = ['.tf', '.tofu'];

export class StandinRefusal extends Error {}

const err = (summary, detail, range) => ({ severity: 'error', summary, detail, range });

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

/** The structure pass: syntax and top-level blocks. Returns {resources, diags}. */
export function structure(files) {
  const diags = [];
  const resources = [];
  for (const file of files) {
    let root;
    try {
      root = parseJsonSource(file.src, file.name);
    } catch (e) {
      if (e instanceof SyntaxDiag) {
        diags.push(e.diag);
        continue;
      }
      throw e;
    }
    for (const { key, keyRange, value } of propsOf(root)) {
      if (key === '//') continue; // JSON syntax: a "//" property is a comment
      if (key === 'resource') resources.push(...resourceBlocks(value, diags));
      else if (key === 'terraform') terraformBlock(value, diags);
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
      else
        diags.push(
          err(
            'Extraneous JSON object property',
            `No argument or block type is named "${key}".`,
            keyRange,
          ),
        );
    }
  }
  return { resources, diags };
}

function resourceBlocks(node, diags) {
  const out = [];
  for (const { key: type, keyRange: typeRange, value: byName } of propsOf(node)) {
    if (type === '//') continue;
    for (const { key: name, keyRange, value: body } of propsOf(byName)) {
      if (name === '//') continue;
      if (body.kind !== 'object' && body.kind !== 'array') {
        diags.push(
          err(
            'Incorrect JSON value type',
            'A JSON object is required here, setting the arguments for this block.',
            body.range,
          ),
        );
        continue;
      }
      out.push({ type, name, address: `${type}.${name}`, typeRange, nameRange: keyRange, body });
    }
  }
  return out;
}

function terraformBlock(node, diags) {
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
    diags.push(
      err(
        'Unsupported setting (tofu stand-in)',
        `The tofu stand-in keeps state in terraform.tfstate only; "terraform.${key}" is not supported.`,
        keyRange,
      ),
    );
  }
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

/**
 * A JSON string is a template: `${path.module}`, `${path.root}` and `${path.cwd}` are evaluated,
 * `$${` and `%%{` are escapes; anything else is beyond the stand-in.
 */
function template(text, range, diags) {
  const references = [];
  const value = text.replace(
    /(\$\$\{|%%\{)|\$\{\s*([^}]*?)\s*\}|(%\{)/g,
    (m, esc, expr, directive) => {
      if (esc) return esc.slice(1);
      if (directive || !['path.module', 'path.root', 'path.cwd'].includes(expr)) {
        diags.push(
          err(
            'Unsupported expression (tofu stand-in)',
            `The tofu stand-in evaluates only \${path.module}, \${path.root} and \${path.cwd}, not "${m}".`,
            range,
          ),
        );
        return m;
      }
      references.push(expr);
      return expr === 'path.cwd' ? process.cwd() : '.';
    },
  );
  return { value, references };
}

/**
 * The schema pass over one local_file (arguments, types, the provider's validators). Returns
 * {args: {name: value}, expressions: {name: {constant_value}|{references}}}.
 */
export function decodeResource(res, diags) {
  if (!res.type.startsWith('local_')) {
    diags.push(
      err(
        'Provider not available (tofu stand-in)',
        `The tofu stand-in has only the hashicorp/local provider; "${res.type}" would need another.`,
        res.typeRange,
      ),
    );
    return undefined;
  }
  if (res.type !== 'local_file') {
    // node_resource_validate.go: "Invalid resource type".
    diags.push(
      err(
        'Invalid resource type',
        `The provider hashicorp/local does not support resource type "${res.type}".`,
        res.typeRange,
      ),
    );
    return undefined;
  }
  const args = {};
  const expressions = {};
  const before = diags.length;
  for (const { key, keyRange, value } of propsOf(res.body)) {
    if (key === '//') continue;
    if (
      [
        'count',
        'for_each',
        'depends_on',
        'lifecycle',
        'provider',
        'provisioner',
        'connection',
      ].includes(key)
    ) {
      diags.push(
        err(
          'Unsupported argument (tofu stand-in)',
          `The tofu stand-in does not support the meta-argument "${key}".`,
          keyRange,
        ),
      );
      continue;
    }
    if (!ARGUMENTS.includes(key) && !COMPUTED.includes(key)) {
      // hcl/json: in JSON syntax an argument the schema lacks is an extraneous property (checked
      // against Terraform 1.11.4: native syntax would say "Unsupported argument").
      diags.push(
        err(
          'Extraneous JSON object property',
          `No argument or block type is named "${key}".`,
          keyRange,
        ),
      );
      continue;
    }
    if (!ARGUMENTS.includes(key)) {
      diags.push(
        err(
          'Invalid Configuration for Read-Only Attribute',
          `Cannot set value for this attribute as the provider has marked it as read-only. Remove the configuration line setting the value.\n\nRefer to the provider documentation or contact the provider developers for additional information about configurable and read-only attributes that are supported.`,
          keyRange,
        ),
      );
      continue;
    }
    if (UNSUPPORTED_BY_STANDIN.includes(key)) {
      diags.push(
        err(
          'Unsupported argument (tofu stand-in)',
          `The tofu stand-in writes content or content_base64 only, not "${key}".`,
          keyRange,
        ),
      );
      continue;
    }
    if (value.kind === 'null') continue;
    if (value.kind === 'object' || value.kind === 'array') {
      diags.push(
        err(
          'Incorrect attribute value type',
          `Inappropriate value for attribute "${key}": string required.`,
          value.range,
        ),
      );
      continue;
    }
    if (value.kind === 'string') {
      const t = template(value.value, value.range, diags);
      args[key] = t.value;
      expressions[key] = t.references.length
        ? { references: t.references }
        : { constant_value: t.value };
    } else {
      args[key] = String(value.value); // cty converts numbers and bools to the string attribute
      expressions[key] = { constant_value: args[key] };
    }
  }
  if (
    args.filename === undefined &&
    !diags.slice(before).some((d) => d.summary.includes('stand-in'))
  )
    diags.push(
      err(
        'Missing required argument',
        'The argument "filename" is required, but no definition was found.',
        openBrace(res.body.range),
      ),
    );
  checkContent(res, args, diags);
  for (const key of ['file_permission', 'directory_permission'])
    checkPermission(res, key, args[key], diags);
  return { args, expressions };
}

/** stringvalidator.ExactlyOneOf on content / sensitive_content / content_base64 / source. */
function checkContent(res, args, diags) {
  const set = CONTENT_ARGS.filter((k) => args[k] !== undefined);
  if (set.length === 1) return;
  const list = `[${CONTENT_ARGS.join(',')}]`;
  diags.push(
    err(
      'Invalid Attribute Combination',
      set.length === 0
        ? `No attribute specified when one (and only one) of ${list} is required`
        : `${set.length} attributes specified when one (and only one) of ${list} is required`,
      res.body.range,
    ),
  );
}

/** localtypes/file_permission_type.go ValidateAttribute. */
function checkPermission(res, key, fp, diags) {
  if (fp === undefined) return;
  const detail =
    fp.length < 3 || fp.length > 4
      ? `bad mode permission: string length should be 3 or 4 digits: ${fp}`
      : !/^[0-7]+$/.test(fp) || parseInt(fp, 8) > 0o777
        ? `bad mode permission: string must be expressed in octal numeric notation: ${fp}`
        : undefined;
  if (detail) diags.push(err('Invalid File Permission String Value', detail, res.body.range));
}

/** hcl's MissingItemRange of a JSON object: its opening brace. */
const openBrace = (range) => ({
  filename: range.filename,
  start: range.start,
  end: { line: range.start.line, column: range.start.column + 1, byte: range.start.byte + 1 },
});
