/**
 * What the release-handling steps (submit, healthy, rollback, the cron jobs) share on any target:
 * a stored spec parsed again, a release's secrets decrypted, and a release row turned into what a
 * target is handed (src/targets). The docker target's own mechanics moved to src/targets/docker;
 * the names this module exported before are re-exported for the code and tests that import them.
 */
import { NornError } from '../../shared/errors.js';
import { decryptSecretsEnv, type SopsFormat } from '../../shared/secrets/sops.js';
import { formatProblems, parseInfraspec, type Infraspec } from '../../shared/spec/infraspec.js';
import type { TargetRelease } from '../../targets/index.js';
import type { Release } from './releases.js';
import type { DeployServices } from './types.js';

export { scrubbed } from '../../shared/scrub.js';
export { LABELS, isScheduled, replicasOf } from '../../targets/docker/runtime.js';

/** A stored or pinned spec, with defaults applied; SPEC_INVALID lists every problem. */
export function parseSpec(raw: unknown): Infraspec {
  const parsed = parseInfraspec(raw);
  if (!parsed.ok)
    throw new NornError(
      'SPEC_INVALID',
      `the app's infraspec is invalid:\n${formatProblems(parsed.problems)}`,
    );
  return parsed.spec;
}

/** Decrypts the secrets file a release recorded (encrypted) with the worker's SOPS keys. */
export async function releaseSecrets(
  s: Pick<DeployServices, 'sopsKeys'>,
  release: Release,
): Promise<Record<string, string>> {
  if (!release.secretsEnc) return {};
  return decryptSecretsEnv(
    release.secretsEnc,
    (release.secretsFormat ?? 'yaml') as SopsFormat,
    await s.sopsKeys(),
  );
}

/** A release row as a target receives it, with its spec parsed and its secrets given. */
export const targetRelease = (
  release: Pick<Release, 'appId' | 'id' | 'deploymentId' | 'imageRef'>,
  spec: Infraspec,
  secrets: Record<string, string>,
): TargetRelease => ({
  app: release.appId,
  id: release.id,
  deploymentId: release.deploymentId,
  imageRef: release.imageRef,
  spec,
  secrets,
});
