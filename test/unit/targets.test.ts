import { describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
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

  it('picks nomad when the spec names it', () => {
    expect(targetFor(registry(), { target: 'nomad' }).name).toBe('nomad');
  });

  it('refuses a target the registry has not got', () => {
    let err: unknown;
    try {
      targetFor({ docker: registry().docker }, { target: 'nomad' });
    } catch (e) {
      err = e;
    }
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toBe('target nomad is not available on this worker');
  });

  it('fails the nomad target clearly when this worker has no NORN_NOMAD_ADDR', async () => {
    const err = await targetFor(registry(), { target: 'nomad' })
      .live('a')
      .catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/needs a Nomad cluster.*set NORN_NOMAD_ADDR/);
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
