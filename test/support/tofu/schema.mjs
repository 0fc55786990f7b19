/**
 * The schema pass over local_file blocks: arguments against the schema of hashicorp/local's
 * local_file, their types, and the provider's own validators. What validate and plan refuse.
 */
import { propsOf } from './json-source.mjs';
import { err, extraneous } from './diags.mjs';
import { ARGUMENTS, COMPUTED, CONTENT_ARGS, UNSUPPORTED_BY_STANDIN } from './local-file.mjs';

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
      diags.push(extraneous(key, keyRange));
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
