/**
 * The schema baseline (001_baseline.sql) has no dead code: every function is defined once and
 * never dropped or replaced, the lock-and-check preamble is shared, and no data-modifying WITH
 * clause returns rows that nothing reads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIR = fileURLToPath(new URL('../../src/shared/db/migrations/', import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith('.sql'));
const sql = files.map((f) => readFileSync(DIR + f, 'utf8')).join('\n');
const code = sql.replace(/--.*$/gm, ''); // comments may name what the code must not do

/** Each `CREATE FUNCTION name(...) ... $$ body $$`, by name. */
const functions = [...code.matchAll(/CREATE FUNCTION (\w+)\(([\s\S]*?)\$\$([\s\S]*?)\$\$/g)].map(
  (m) => ({ name: m[1]!, body: m[3]! }),
);

describe('the schema baseline', () => {
  it('comes first; the migrations after it (issue 11: 002_webhooks, 003_stacks) only add to it', () => {
    expect(files[0]).toBe('001_baseline.sql');
    for (const f of files) expect(f).toMatch(/^\d{3}_[a-z0-9_]+\.sql$/);
  });

  it('defines each function once and never drops or replaces one', () => {
    const names = functions.map((f) => f.name);
    expect(names.length).toBeGreaterThan(10);
    expect(new Set(names).size).toBe(names.length);
    expect(code).not.toMatch(/DROP\s+(FUNCTION|TABLE|TRIGGER)/i);
    expect(code).not.toMatch(/CREATE\s+OR\s+REPLACE/i);
    expect(code).not.toMatch(/ALTER\s+TABLE/i);
  });

  it('shares the lock-and-check preamble: only the entry points lock an app row themselves', () => {
    const lockers = functions.filter((f) => /FROM apps WHERE[\s\S]*?FOR UPDATE/.test(f.body));
    // norn_lock_run is the preamble of every transition on an existing run; a request locks the
    // app it names, the sweeper's admit the app it finds free, the recorder every app of a batch.
    expect(lockers.map((f) => f.name).sort()).toEqual(
      ['norn_admit_scope', 'norn_lock_run', 'norn_record', 'norn_request_run'].sort(),
    );
    const transitions = [
      'norn_run_succeed',
      'norn_step_fail',
      'norn_request_cancel',
      'norn_finalizer_done',
    ];
    for (const name of transitions) {
      expect(functions.find((f) => f.name === name)?.body, name).toMatch(/norn_lock_run\(p_run\)/);
    }
  });

  it('has no data-modifying WITH clause whose RETURNING nothing reads', () => {
    // A WITH clause runs from `name AS (` to the `)` that closes it at the start of a line.
    const clauses = [...code.matchAll(/(\w+) AS \(\s*(INSERT|UPDATE|DELETE)([\s\S]*?)\n\s*\)/g)];
    expect(clauses.map((c) => c[1])).toEqual(
      expect.arrayContaining(['step_rows', 'appended', 'seqs', 'recorded', 'leases']),
    );
    for (const [, name, , body] of clauses) {
      if (!/RETURNING/.test(body!)) continue;
      const reads = code.split(new RegExp(`\\bFROM ${name}\\b`)).length - 1;
      expect(reads, `${name} is returned but never read`).toBeGreaterThan(0);
    }
    expect(code).not.toMatch(/RETURNING 1\b/);
  });

  it('keeps no table without code: forge_state is moved by the forge and teardown hooks', () => {
    expect(code).toMatch(/CREATE TABLE forge_state/);
    const hooks = readFileSync(
      fileURLToPath(new URL('../../src/pipelines/forge/state.ts', import.meta.url)),
      'utf8',
    );
    expect(hooks).toMatch(/UPDATE forge_state/);
  });
});
