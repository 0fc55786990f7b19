/**
 * Loads the root module from `*.tf.json` files (OpenTofu's JSON configuration syntax) and checks
 * it in two passes, as OpenTofu does: `structure` here (what init already refuses: syntax, unknown
 * top-level keys) and schema.mjs (what validate/plan refuse: arguments against local_file's schema).
 * Native-syntax files (.tf, .tofu) make the stand-in refuse outright: it has no HCL parser.
 * Diagnostic wording is OpenTofu's / HCL's / the provider's (cited where each is made).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonSource, propsOf, SyntaxDiag } from './json-source.mjs';

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
