import { describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import { parseInfraspec } from '../../src/shared/spec/infraspec.js';
import { createTargets, targetFor } from '../../src/targets/index.js';

const noCron = { upsert: async () => 'x', prune: async () => [] };
const registry = () => createTargets({ docker: { docker: undefined, cron: noCron, pollMs: 10 } });

describe('targetFor', () => {
  it('picks docker when the spec names no target, and when it names docker', () => {
    expect(targetFor(registry(), {}).name).toBe('docker');
    expect(targetFor(registry(), { target: 'docker' }).name).toBe('docker');
  });

  it('refuses a target norn does not implement yet with the spec parser’s words', () => {
    const parsed = parseInfraspec({ name: 'a', target: 'kubernetes' });
    const parserSays = parsed.ok ? '' : parsed.problems.map((p) => p.message).join('\n');
    for (const target of ['kubernetes', 'nomad'] as const) {
      let err: unknown;
      try {
        targetFor(registry(), { target });
      } catch (e) {
        err = e;
      }
      expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
      expect((err as Error).message).toBe(
        `target ${target} is not implemented yet; only docker is (or leave target out)`,
      );
    }
    expect(parserSays).toContain('target kubernetes is not implemented yet; only docker is');
  });

  it('fails the docker target clearly when this worker has no engine', async () => {
    const err = await targetFor(registry(), {})
      .live('a')
      .catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/needs a Docker engine.*NORN_DOCKER_SOCKET/);
  });
});
