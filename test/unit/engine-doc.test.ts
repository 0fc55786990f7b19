/** docs/engine.md is generated from the state machine's table, and every transition has its test. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { engineDoc } from '../../src/queues/engine-doc.js';
import { TRANSITIONS } from '../../src/queues/transitions.js';

const testDir = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : /\.ts$/.test(e.name)
        ? [readFileSync(join(dir, e.name), 'utf8')]
        : [],
  );
}

/** The titles of every `it(…)` and `test(…)` under test/ (a string literal as first argument). */
function testTitles(): Set<string> {
  const call = /\b(?:it|test)(?:\.(?:only|skip|concurrent))?\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g;
  const titles = new Set<string>();
  for (const source of sources(testDir))
    for (const m of source.matchAll(call)) titles.add(m[2]!.replace(/\\(.)/g, '$1'));
  return titles;
}

describe('the engine state machine (src/queues/transitions.ts)', () => {
  it('is what docs/engine.md says (npm run docs:engine writes it)', () => {
    const doc = readFileSync(new URL('../../docs/engine.md', import.meta.url), 'utf8');
    expect(doc).toBe(engineDoc());
  });

  it('names each transition once, and each one by a test of its own whose title starts with its id', () => {
    const ids = TRANSITIONS.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    const tests = TRANSITIONS.map((t) => t.test);
    expect(new Set(tests).size).toBe(tests.length);
    const titles = testTitles();
    const missing = TRANSITIONS.filter((t) => !titles.has(t.test)).map((t) => t.test);
    expect(missing).toEqual([]);
    for (const t of TRANSITIONS) expect(t.test.startsWith(`${t.id}: `)).toBe(true);
  });
});
