/**
 * The repository's SOPS secrets file, as submit reads it: found by name (never through a link),
 * decrypted with the worker's keys (MAC-checked), and checked against spec.secrets.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NornError } from '../../shared/errors.js';
import {
  decryptSecretsEnv,
  sopsFormatForPath,
  type SopsFormat,
} from '../../shared/secrets/sops.js';
import type { Infraspec } from '../../shared/spec/infraspec.js';
import { DATABASE_URL, withDatabaseUrl } from './docker-runtime.js';
import type { DeployServices, ReadsOutputs } from './types.js';
import { ensureSource } from './workspace.js';

/** Where an app keeps its secrets, in the order they are looked for. */
export const SECRETS_FILES = [
  'secrets.enc.yaml',
  'secrets.enc.yml',
  'secrets.enc.json',
  'secrets.enc.env',
] as const;

interface SecretsFile {
  name: string;
  text: string;
  format: SopsFormat;
}

/** The repository's secrets file, if any; a symlink is refused (it could point outside the clone). */
async function findSecretsFile(dir: string): Promise<SecretsFile | undefined> {
  for (const name of SECRETS_FILES) {
    const path = join(dir, name);
    const stat = await lstat(path).catch(() => undefined);
    if (!stat) continue;
    if (!stat.isFile())
      throw new NornError(
        'SECRETS_INVALID',
        `${name} in the repository must be a regular file, not a link or directory`,
      );
    return { name, text: await readFile(path, 'utf8'), format: sopsFormatForPath(name) };
  }
  return undefined;
}

/**
 * Decrypts the secrets file (MAC-checked) and checks every key spec.secrets declares is there;
 * `values` are what the release's processes get (with DATABASE_URL: withDatabaseUrl).
 */
export async function loadSecrets(ctx: ReadsOutputs<'clone'>, s: DeployServices, spec: Infraspec) {
  const file = await findSecretsFile(await ensureSource(ctx, s));
  const declared = spec.secrets ?? [];
  const given = (values: Record<string, string>) => {
    const all = withDatabaseUrl(s, ctx.run.appId, spec, values);
    if (all !== values)
      ctx.log(
        `${DATABASE_URL}: database ${spec.infrastructure?.postgres?.database} on NORN_APP_DATABASE_URL's server`,
      );
    return all;
  };
  if (!file) {
    if (declared.length) {
      throw new NornError(
        'SECRETS_INVALID',
        `spec.secrets declares ${declared.join(', ')} but the repository has no ${SECRETS_FILES[0]}`,
      );
    }
    return { file, values: given({}) };
  }
  const values = await decryptSecretsEnv(file.text, file.format, await s.sopsKeys());
  const missing = declared.filter((key) => !Object.hasOwn(values, key));
  if (missing.length) {
    throw new NornError(
      'SECRETS_INVALID',
      `${file.name} lacks keys declared in spec.secrets: ${missing.join(', ')}`,
      {
        details: { missing },
      },
    );
  }
  ctx.log(`decrypted ${file.name} (${Object.keys(values).length} keys)`);
  return { file, values: given(values) };
}
