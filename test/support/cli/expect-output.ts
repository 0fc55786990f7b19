/** Assertions on what the CLI prints for the 9-step test pipeline `chain` (s1…s9). */
import { createServer } from 'node:net';
import { expect } from 'vitest';

const STEPS = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);
export const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** The first "deployment <uuid>" the CLI printed. */
export const deploymentIdIn = (out: string) => new RegExp(`deployment (${UUID})`).exec(out)?.[1];

/** The progress lines of one step ("[i/9] <step> …"). */
export const stepLines = (out: string, step: string) =>
  out.split('\n').filter((l) => new RegExp(`^\\[\\d+/9\\] ${step} `).test(l));

/** Every step printed exactly twice, in order: "[i/9] sI running" then "[i/9] sI complete <duration>". */
export function expectNineCompleteSteps(stdout: string) {
  for (const [i, step] of STEPS.entries()) {
    expect(stepLines(stdout, step), step).toEqual([
      expect.stringMatching(new RegExp(`^\\[${i + 1}/9\\] ${step} +running$`)),
      expect.stringMatching(new RegExp(`^\\[${i + 1}/9\\] ${step} +complete \\d+(\\.\\d)?(ms|s)$`)),
    ]);
  }
  const order = stdout
    .split('\n')
    .filter((l) => /^\[\d\/9\]/.test(l))
    .map((l) => l.split(/\s+/)[1]);
  expect(order).toEqual(STEPS.flatMap((s) => [s, s]));
}

/** A loopback port nothing listens on (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
