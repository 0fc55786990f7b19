/**
 * The infraspec and stack-spec parsers under generated input: whatever text or value arrives, they
 * answer a result (the spec, or problems each with a path and a message) and never throw, and a
 * YAML alias bomb is refused, not expanded.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseInfraspec } from '../../src/shared/spec/infraspec.js';
import { parseStack } from '../../src/shared/spec/stack.js';

const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.string({ unit: 'binary' }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(
        fc.string(),
        fc.constantFrom('name', 'repo', 'processes', 'path', 'drift', 'verify'),
      ),
      tie('v'),
      { maxKeys: 5 },
    ),
  ),
})).v;

const inputs = fc.oneof(
  value,
  value.map((v) => JSON.stringify(v)),
  fc.string({ unit: 'binary' }),
  fc.constant('a: &a [1]\nb: *a\nc: [*a, *b]\n'),
);

const bomb = [
  'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
  ...Array.from({ length: 9 }, (_, i) => {
    const p = String.fromCharCode(97 + i);
    return `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${p}`).join(',')}]`;
  }),
].join('\n');

type Parsed = { ok: true } | { ok: false; problems: Array<{ path: unknown; message: unknown }> };

function wellFormed(result: Parsed): boolean {
  if (result.ok) return true;
  return (
    result.problems.length > 0 &&
    result.problems.every((p) => typeof p.message === 'string' && p.message.length > 0)
  );
}

describe('spec parsers under generated input', () => {
  for (const [name, parse] of [
    ['parseInfraspec', parseInfraspec],
    ['parseStack', parseStack],
  ] as const) {
    it(`${name} answers every input with a spec or problems, never a throw`, () => {
      fc.assert(
        fc.property(inputs, (input) => wellFormed(parse(input as never) as Parsed)),
        { numRuns: 3_000 },
      );
    });

    it(`${name} refuses a YAML alias bomb instead of expanding it`, () => {
      const started = Date.now();
      const result = parse(bomb as never) as Parsed;
      expect(result).toMatchObject({
        ok: false,
        problems: [{ message: expect.stringMatching(/alias count/) }],
      });
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  }
});
