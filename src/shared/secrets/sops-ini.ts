/**
 * An INI reader with go-ini's default rules (what sops's INI store uses): keys before any section go
 * to `DEFAULT`; `=` or `:` ends a key; `;`/`#` start comments, also inline; one pair of surrounding
 * quotes is removed; backtick and triple-quote values and `\` continuations are understood.
 * Errors name a line number, never the line (it may hold a secret).
 */
import { sopsError } from './sops-tree.js';

export type IniSection = [name: string, keys: Array<[string, string]>];

export function parseIni(text: string): IniSection[] {
  const lines = text.replace(/^\uFEFF/, '').split(/(?<=\n)/); // keep each line's '\n', as go-ini does
  const sections: IniSection[] = [['DEFAULT', []]];
  let current = sections[0]!;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const lineNo = index + 1;
    if (line.startsWith('[')) {
      const close = line.lastIndexOf(']');
      if (close === -1) throw iniError(lineNo, 'has an unclosed section header');
      const name = line.slice(1, close);
      if (name === '') throw iniError(lineNo, 'has an empty section name');
      current = sections.find(([existing]) => existing === name) ?? pushSection(sections, name);
      continue;
    }
    const delimiter = line.search(/[=:]/);
    if (delimiter < 0) throw iniError(lineNo, 'is neither a section, a comment nor key = value');
    if (delimiter === 0) throw iniError(lineNo, 'has an empty key name');
    const key = line.slice(0, delimiter).trim();
    const read = readValue(line.slice(delimiter + 1), lines, index);
    index = read.lastIndex;
    const existing = current[1].find(([name]) => name === key);
    if (existing)
      existing[1] = read.value; // go-ini: a repeated key overwrites in place
    else current[1].push([key, read.value]);
  }
  return sections;
}

function pushSection(sections: IniSection[], name: string): IniSection {
  const section: IniSection = [name, []];
  sections.push(section);
  return section;
}

function iniError(line: number, what: string) {
  return sopsError('malformed', `line ${line} of the INI file ${what}`);
}

/** go-ini's readValue; returns the value and the index of the last line it consumed. */
function readValue(
  raw: string,
  lines: string[],
  index: number,
): { value: string; lastIndex: number } {
  let line = raw.replace(/^\s+/, '');
  if (line === '') return { value: '', lastIndex: index };
  const quote = line.length > 3 && line.startsWith('"""') ? '"""' : line.startsWith('`') ? '`' : '';
  if (quote) return readQuoted(line, quote, lines, index);
  line = line.trim();
  if (line.endsWith('\\')) return readContinuation(line.slice(0, -1), lines, index);
  const comment = line.search(/[#;]/);
  if (comment > -1) line = line.slice(0, comment).trim();
  return { value: unquote(line), lastIndex: index };
}

function readQuoted(line: string, quote: string, lines: string[], index: number) {
  const rest = line.slice(quote.length);
  const end = rest.lastIndexOf(quote);
  if (end > -1) return { value: rest.slice(0, end), lastIndex: index };
  let value = rest;
  for (let next = index + 1; next < lines.length; next++) {
    const text = lines[next]!;
    const close = text.lastIndexOf(quote);
    if (close > -1) return { value: value + text.slice(0, close), lastIndex: next };
    value += text;
  }
  throw iniError(index + 1, 'opens a quoted value that is never closed');
}

function readContinuation(start: string, lines: string[], index: number) {
  let value = start;
  let last = index;
  for (let next = index + 1; next < lines.length; next++) {
    const text = lines[next]!.trim();
    if (text === '') break;
    last = next;
    value += text;
    if (!value.endsWith('\\')) break;
    value = value.slice(0, -1);
  }
  return { value, lastIndex: last };
}

/** Removes one pair of surrounding quotes when that quote character appears nowhere else. */
function unquote(value: string): string {
  for (const q of ["'", '"']) {
    if (
      value.length >= 2 &&
      value.startsWith(q) &&
      value.endsWith(q) &&
      value.indexOf(q, 1) === value.length - 1
    ) {
      return value.slice(1, -1);
    }
  }
  return value;
}
