import { describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import { parseInfraspec } from '../../src/shared/spec/infraspec.js';
import { createTargets, targetFor } from '../../src/targets/index.js';

const noCron = { upsert: async () => 'x', prune: async () => [] };
const registry = () =>
  createTargets({
    docker: { docker: undefined, cron: noCron, pollMs: 10 },
    kubernetes: { HOME: '/nonexistent' },
  });

describe('targetFor', () => {
  it('picks docker when the spec names no target, and when it names docker', () => {
    expect(targetFor(registry(), {}).name).toBe('docker');
    expect(targetFor(registry(), { target: 'docker' }).name).toBe('docker');
  });

  it('picks kubernetes when the spec names it', () => {
    expect(targetFor(registry(), { target: 'kubernetes' }).name).toBe('kubernetes');
  });

  it('refuses a target norn does not implement yet with the spec parser’s words', () => {
    const parsed = parseInfraspec({ name: 'a', target: 'nomad' });
    const parserSays = parsed.ok ? '' : parsed.problems.map((p) => p.message).join('\n');
    let err: unknown;
    try {
      targetFor(registry(), { target: 'nomad' });
    } catch (e) {
      err = e;
    }
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toBe(
      'target nomad is not implemented yet; only docker and kubernetes are (or leave target out)',
    );
    expect(parserSays).toContain((err as Error).message);
  });

  it('fails the kubernetes target clearly when this worker has no cluster config', async () => {
    const err = await targetFor(registry(), { target: 'kubernetes' })
      .live('a')
      .catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/needs a cluster config.*set KUBECONFIG/);
  });

  it('fails the docker target clearly when this worker has no engine', async () => {
    const err = await targetFor(registry(), {})
      .live('a')
      .catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/needs a Docker engine.*NORN_DOCKER_SOCKET/);
  });
});
