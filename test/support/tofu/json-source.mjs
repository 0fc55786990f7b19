/**
 * A JSON parser that keeps source ranges, so the stand-in's diagnostics point at a line, column
 * and byte the way OpenTofu's do (hcl/json: `range: {filename, start: {line, column, byte}, end}`).
 * The summaries and details of syntax errors are HCL's own (hcl/v2 json/parser.go), e.g.
 * "Missing attribute seperator comma" (sic) and "Unclosed object"; checked against Terraform
 * 1.11.4 `validate -json` on a truncated file ("Missing value", "The JSON data ends prematurely.").
 */
import { Buffer } from 'node:buffer';

export class SyntaxDiag extends Error {
  constructor(summary, detail, range) {
    super(summary);
    this.diag = { severity: 'error', summary, detail, range };
  }
}

/** Parses `src` (of file `filename`) into nodes: {kind, value|props|items, range}. */
export function parseJsonSource(src, filename) {
  const lineStarts = [0];
  for (let i = 0; i < src.length; i++) if (src[i] === '\n') lineStarts.push(i + 1);
  const pos = (i) => {
    let line = 0;
    while (line + 1 < lineStarts.length && lineStarts[line + 1] <= i) line++;
    return {
      line: line + 1,
      column: i - lineStarts[line] + 1,
      byte: Buffer.byteLength(src.slice(0, i)),
    };
  };
  const range = (a, b) => ({ filename, start: pos(a), end: pos(b) });
  const fail = (summary, detail, a, b = a + 1) => {
    throw new SyntaxDiag(summary, detail, range(a, Math.min(b, Math.max(src.length, a + 1))));
  };
  let i = 0;
  const skip = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };

  function value() {
    skip();
    const start = i;
    const c = src[i];
    if (c === undefined) fail('Missing value', 'The JSON data ends prematurely.', i);
    if (c === '{') return object();
    if (c === '[') return array();
    if (c === '"') return { kind: 'string', value: string(), range: range(start, i) };
    const lit = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(
      src.slice(i),
    );
    if (!lit) fail('Invalid JSON token', 'A JSON value was expected here.', i);
    i += lit[0].length;
    const v = JSON.parse(lit[0]);
    const kind = v === null ? 'null' : typeof v === 'boolean' ? 'bool' : 'number';
    return { kind, value: v, range: range(start, i) };
  }

  function string() {
    const start = i;
    i++;
    while (i < src.length && src[i] !== '"') {
      if (src[i] === '\\') i++;
      if (src[i] === '\n')
        fail('Invalid JSON string', 'A JSON string must not contain a line break.', i);
      i++;
    }
    if (i >= src.length)
      fail('Unterminated string', 'A JSON string must be closed by a quote.', start);
    i++;
    try {
      return JSON.parse(src.slice(start, i));
    } catch {
      return fail(
        'Invalid JSON string',
        'The string contains an invalid escape sequence.',
        start,
        i,
      );
    }
  }

  function object() {
    const open = i++;
    const props = [];
    for (;;) {
      skip();
      if (src[i] === '}') break;
      if (i >= src.length) {
        if (props.length === 0) fail('Missing value', 'The JSON data ends prematurely.', i);
        fail('Unclosed object', 'No closing brace was found for this JSON object.', open);
      }
      if (src[i] !== '"')
        fail('Invalid object property name', 'A JSON object property name must be a string', i);
      const keyStart = i;
      const key = string();
      const keyRange = range(keyStart, i);
      skip();
      if (src[i] !== ':')
        fail(
          'Missing property value colon',
          "A colon must appear between an object property's name and its value.",
          i,
        );
      i++;
      props.push({ key, keyRange, value: value() });
      skip();
      if (src[i] === ',') {
        i++;
        skip();
        if (src[i] === '}')
          fail(
            'Trailing comma in object',
            'JSON does not permit a trailing comma after the final attribute in an object.',
            i - 1,
          );
        continue;
      }
      if (src[i] === '}') break;
      if (i >= src.length)
        fail('Unclosed object', 'No closing brace was found for this JSON object.', open);
      if (src[i] === ']')
        fail('Mismatched braces', 'A JSON object must be closed with a brace, not a bracket.', i);
      fail(
        'Missing attribute seperator comma',
        'A comma must appear between each attribute declaration in an object.',
        i,
      );
    }
    i++;
    return { kind: 'object', props, range: range(open, i) };
  }

  function array() {
    const open = i++;
    const items = [];
    for (;;) {
      skip();
      if (src[i] === ']') break;
      if (i >= src.length)
        fail('Unclosed array', 'No closing bracket was found for this JSON array.', open);
      items.push(value());
      skip();
      if (src[i] === ',') {
        i++;
        continue;
      }
      if (src[i] === ']') break;
      if (i >= src.length)
        fail('Unclosed array', 'No closing bracket was found for this JSON array.', open);
      fail(
        'Missing array element separator comma',
        'A comma must appear between each element of an array.',
        i,
      );
    }
    i++;
    return { kind: 'array', items, range: range(open, i) };
  }

  const root = value();
  skip();
  if (i < src.length)
    fail('Extraneous data after value', 'Extra characters appear after the JSON value.', i);
  if (root.kind !== 'object' && root.kind !== 'array')
    fail(
      'Root value must be object',
      'The root value in a JSON-based configuration must be either a JSON object or a JSON array of objects.',
      0,
    );
  return root;
}

/** The properties of an object node, or of every object in an array node (JSON syntax allows both). */
export function propsOf(node) {
  if (node.kind === 'object') return node.props;
  if (node.kind === 'array') return node.items.flatMap((n) => (n.kind === 'object' ? n.props : []));
  return [];
}
