/**
 * What the release-handling steps (submit, healthy, rollback, the cron jobs, forge) share on any
 * target: a stored spec parsed again, a release's secrets decrypted (with DATABASE_URL), and a
 * release row turned into what a target is handed (src/targets). The docker target's own
 * mechanics moved to src/targets/docker; the names this module exported before are re-exported
 * for the code and tests that import them.
 */
import { databaseUrlFor } from '../../shared/drivers/postgres-connect.js';
import { NornError } from '../../shared/errors.js';
import { decryptSecretsEnv, type SopsFormat } from '../../shared/secrets/sops.js';
import { formatProblems, parseInfraspec, type Infraspec } from '../../shared/spec/infraspec.js';
import type { TargetRelease } from '../../targets/index.js';
import type { Release } from './releases.js';
import type { DeployServices } from './types.js';

export { scrubbed } from '../../shared/scrub.js';
export { LABELS, isScheduled, slotsOf } from '../../targets/docker/runtime.js';

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

/** The variable an app's processes find their database in (infrastructure.postgres). */
export const DATABASE_URL = 'DATABASE_URL';

/** Whether the app sets `name` in its own env or one of its processes' env. */
const inEnv = (spec: Infraspec, name: string) =>
  Object.hasOwn(spec.env ?? {}, name) ||
  Object.values(spec.processes).some((p) => Object.hasOwn(p.env ?? {}, name));

/**
 * The secret values a release's processes get, wherever a release is made (submit, a rollback,
 * a cron tick, forge): the app's own `secrets`, and DATABASE_URL, the URL of its database on
 * NORN_APP_DATABASE_URL's server, when the spec declares infrastructure.postgres. It holds a
 * password, so it is a secret: kept out of pod specs and logs as the others are. The app's own
 * DATABASE_URL wins, a secret or an `env` entry (the app's or any process's), and then norn's is
 * left out. Declared but with NORN_APP_DATABASE_URL unset on this worker: UNAVAILABLE, saying so.
 */
export function withDatabaseUrl(
  s: Pick<DeployServices, 'appDatabaseUrl'>,
  app: string,
  spec: Infraspec,
  secrets: Record<string, string>,
): Record<string, string> {
  const database = spec.infrastructure?.postgres?.database;
  if (!database || Object.hasOwn(secrets, DATABASE_URL) || inEnv(spec, DATABASE_URL))
    return secrets;
  if (!s.appDatabaseUrl)
    throw new NornError(
      'UNAVAILABLE',
      `app ${app} declares infrastructure.postgres (database ${database}), whose URL its processes get as ${DATABASE_URL}, but NORN_APP_DATABASE_URL is not set on this worker`,
      { details: { database } },
    );
  return { [DATABASE_URL]: databaseUrlFor(s.appDatabaseUrl, database), ...secrets };
}

/**
 * What a recorded release's processes get as secrets under `spec`: the secrets file it recorded
 * (encrypted), decrypted with the worker's SOPS keys, with DATABASE_URL (withDatabaseUrl).
 */
export async function releaseSecrets(
  s: Pick<DeployServices, 'sopsKeys' | 'appDatabaseUrl'>,
  release: Release,
  spec: Infraspec,
): Promise<Record<string, string>> {
  const decrypted = release.secretsEnc
    ? await decryptSecretsEnv(
        release.secretsEnc,
        (release.secretsFormat ?? 'yaml') as SopsFormat,
        await s.sopsKeys(),
      )
    : {};
  return withDatabaseUrl(s, release.appId, spec, decrypted);
}

/** A release row as a target receives it, with its spec parsed and its secrets given. */
export const targetRelease = (
  release: Pick<Release, 'appId' | 'id' | 'deploymentId' | 'imageRef'> &
    Partial<Pick<Release, 'commitSha'>>,
  spec: Infraspec,
  secrets: Record<string, string>,
): TargetRelease => ({
  app: release.appId,
  id: release.id,
  deploymentId: release.deploymentId,
  imageRef: release.imageRef,
  ...(release.commitSha ? { commitSha: release.commitSha } : {}),
  spec,
  secrets,
});
