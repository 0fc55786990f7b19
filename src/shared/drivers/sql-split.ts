/**
 * Splits a SQL script into statements, for `-- norn:no-transaction` migrations: PostgreSQL runs a
 * multi-statement query string as one implicit transaction, which statements like
 * CREATE INDEX CONCURRENTLY refuse, so such a file has to be sent one statement at a time.
 *
 * Knows PostgreSQL's lexical rules for where a `;` does not end a statement: '…' strings (with ''
 * and, in E'…', backslash escapes), "…" identifiers, $tag$…$tag$ bodies, -- and nested block
 * comments. It does not parse SQL beyond that.
 */

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

/** Index just after the quoted/commented span starting at `i`, or `i` when none starts there. */
function skipSpan(sql: string, i: number): number {
  const c = sql[i];
  const next = sql[i + 1];
  if (c === '-' && next === '-') {
    const end = sql.indexOf('\n', i);
    return end < 0 ? sql.length : end + 1;
  }
  if (c === '/' && next === '*') {
    let depth = 1;
    let j = i + 2;
    while (j < sql.length && depth > 0) {
      if (sql.startsWith('/*', j)) {
        depth++;
        j += 2;
      } else if (sql.startsWith('*/', j)) {
        depth--;
        j += 2;
      } else j++;
    }
    return j;
  }
  if (c === "'") {
    const prev = sql[i - 1] ?? '';
    const escapes = /[eE]/.test(prev) && !IDENT_CHAR.test(sql[i - 2] ?? '');
    return skipQuoted(sql, i, "'", escapes);
  }
  if (c === '"') return skipQuoted(sql, i, '"', false);
  if (c === '$' && !IDENT_CHAR.test(sql[i - 1] ?? '')) {
    const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(
      sql.slice(i, i + 64),
    )?.[0];
    if (tag) {
      const end = sql.indexOf(tag, i + tag.length);
      return end < 0 ? sql.length : end + tag.length;
    }
  }
  return i;
}

function skipQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let j = start + 1;
  while (j < sql.length) {
    const ch = sql[j];
    if (backslashEscapes && ch === '\\') j += 2;
    else if (ch === quote && sql[j + 1] === quote) j += 2;
    else if (ch === quote) return j + 1;
    else j++;
  }
  return j;
}

/** The statements of `sql`, trimmed, without empty or comment-only ones. */
export function splitSqlStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let hasCode = false;
  let i = 0;
  const flush = (end: number) => {
    const text = sql.slice(start, end).trim();
    if (hasCode && text) out.push(text);
    hasCode = false;
  };
  while (i < sql.length) {
    const c = sql[i] ?? '';
    const isComment = sql.startsWith('--', i) || sql.startsWith('/*', i);
    const after = skipSpan(sql, i);
    if (after > i) {
      if (!isComment) hasCode = true;
      i = after;
    } else if (c === ';') {
      flush(i);
      start = i + 1;
      i++;
    } else {
      if (!/\s/.test(c)) hasCode = true;
      i++;
    }
  }
  flush(sql.length);
  return out;
}
