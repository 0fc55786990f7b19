/**
 * A small JSON reader that keeps object keys in document order (and duplicates), which JSON.parse
 * cannot: the SOPS MAC hashes values in the order the file lists them. Numbers are float64, as Go's
 * encoding/json gives sops. Errors report a position only, never the text (it may hold secrets).
 */
import { sopsError, TreeBranch, type TreeValue } from './sops-tree.js';

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;

export function parseOrderedJson(text: string): TreeValue {
  const reader = new JsonReader(text);
  const value = reader.value(0);
  reader.skipWhitespace();
  if (reader.pos < text.length) reader.fail('unexpected data after the top-level value');
  return value;
}

class JsonReader {
  pos = 0;
  constructor(private readonly text: string) {}

  value(depth: number): TreeValue {
    if (depth > 200) this.fail('nesting is too deep');
    this.skipWhitespace();
    const ch = this.text[this.pos];
    if (ch === '{') return this.object(depth);
    if (ch === '[') return this.array(depth);
    if (ch === '"') return this.string();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (!match || match[0] === '') this.fail('expected a value');
    this.pos += match[0].length;
    return Number(match[0]);
  }

  private object(depth: number): TreeBranch {
    const branch = new TreeBranch();
    this.pos++; // {
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return branch;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail('expected an object key');
      const key = this.string();
      this.expect(':');
      branch.items.push([key, this.value(depth + 1)]);
      if (this.separator('}')) return branch;
    }
  }

  private array(depth: number): TreeValue[] {
    const items: TreeValue[] = [];
    this.pos++; // [
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.value(depth + 1));
      if (this.separator(']')) return items;
    }
  }

  /** Consumes `,` (returns false) or the closing bracket (returns true). */
  private separator(close: string): boolean {
    this.skipWhitespace();
    const ch = this.text[this.pos];
    this.pos++;
    if (ch === close) return true;
    if (ch !== ',') this.fail(`expected ',' or '${close}'`);
    return false;
  }

  private string(): string {
    const start = this.pos;
    let end = start + 1;
    while (end < this.text.length && this.text[end] !== '"') end += this.text[end] === '\\' ? 2 : 1;
    if (end >= this.text.length) this.fail('unterminated string');
    this.pos = end + 1;
    try {
      return JSON.parse(this.text.slice(start, end + 1)) as string;
    } catch {
      this.pos = start;
      return this.fail('invalid string literal');
    }
  }

  private expect(ch: string): void {
    this.skipWhitespace();
    if (this.text[this.pos] !== ch) this.fail(`expected '${ch}'`);
    this.pos++;
  }

  skipWhitespace(): void {
    WHITESPACE.lastIndex = this.pos;
    this.pos += WHITESPACE.exec(this.text)![0].length;
  }

  fail(what: string): never {
    const before = this.text.slice(0, this.pos);
    const line = before.split('\n').length;
    const column = this.pos - before.lastIndexOf('\n');
    throw sopsError(
      'malformed',
      `the file is not valid JSON: ${what} at line ${line}, column ${column}`,
    );
  }
}
