/**
 * SOPS decryption without the sops binary, interoperable with files the real `sops` writes (YAML,
 * JSON, dotenv, INI; age and PGP recipients). The deploy `submit` step turns an app's
 * `secrets.enc.yaml` into container environment with `decryptSecretsEnv`.
 *
 * Every document is authenticated before anything is returned: each value by AES-GCM (bound to its
 * key path) and the whole document by the SOPS MAC. Failures are NornError('SECRETS_INVALID') with
 * `details.reason`; messages name key paths and public recipients, never decrypted values or keys.
 * Not supported (clear errors): Shamir key groups, cloud KMS/Vault recipients, age plugins,
 * multi-document YAML, the binary format.
 */
import { parseDocument, type SopsFormat } from './sops-formats.js';
import { recoverDataKey, type SopsKeys } from './sops-keys.js';
import { parseMetadata } from './sops-metadata.js';
import { defineKey, sopsError, type PlainValue } from './sops-tree.js';
import { decryptTree, goFormatFloat, verifyMac } from './sops-values.js';

export { keysFromEnv, parseAgeIdentities, type SopsKeys } from './sops-keys.js';
export type { SopsFormat } from './sops-formats.js';
export type { PlainValue } from './sops-tree.js';

/** Decrypts a SOPS document; verifies the MAC; returns the cleartext tree (without the `sops` metadata key). */
export async function decryptSops(
  text: string,
  format: SopsFormat,
  keys: SopsKeys,
): Promise<Record<string, PlainValue>> {
  const { data, metadata } = parseDocument(text, format);
  if (metadata === undefined || metadata === null) {
    throw sopsError(
      'not-sops',
      `not a SOPS-encrypted file: the ${format} document has no ${METADATA_PLACE[format]}`,
    );
  }
  const meta = parseMetadata(metadata);
  const dataKey = await recoverDataKey(meta, keys);
  const { tree, computedMac } = decryptTree(data, meta, dataKey);
  verifyMac(meta, dataKey, computedMac);
  return tree;
}

const METADATA_PLACE: Record<SopsFormat, string> = {
  yaml: 'top-level `sops` key',
  json: 'top-level "sops" key',
  dotenv: '`sops_*` entries',
  ini: '[sops] section',
};

/** Environment names as Docker accepts them: anything without '=', whitespace or NUL. */
const ENV_NAME = /^[^=\s\0]+$/;

/**
 * For the deploy step: a flat name → value map from a decrypted YAML/JSON/dotenv document (top-level
 * keys). Nested maps or lists, and names that cannot be environment variables, are refused with the
 * offending key names. Numbers print as sops prints them, booleans as true/false, null as ''.
 */
export async function decryptSecretsEnv(
  text: string,
  format: SopsFormat,
  keys: SopsKeys,
): Promise<Record<string, string>> {
  const tree = await decryptSops(text, format, keys);
  const env: Record<string, string> = {};
  const nested: string[] = [];
  const badNames: string[] = [];
  for (const [key, value] of Object.entries(tree)) {
    if (!ENV_NAME.test(key)) badNames.push(key);
    else if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array))
      nested.push(key);
    else defineKey(env, key, envString(value));
  }
  if (nested.length > 0) {
    const which = nested.map((key) => `'${key}'`).join(', ');
    const what = nested.length === 1 ? 'holds a nested map or list' : 'hold nested maps or lists';
    throw sopsError('not-flat', `secrets must be a flat map of NAME: value, but ${which} ${what}`, {
      keys: nested,
    });
  }
  if (badNames.length > 0) {
    const which = badNames.map((key) => JSON.stringify(key)).join(', ');
    const message = `secret names must be usable as environment variables (no '=', whitespace or NUL): ${which}`;
    throw sopsError('not-flat', message, { keys: badNames });
  }
  return env;
}

function envString(
  value: Exclude<PlainValue, PlainValue[] | { [key: string]: PlainValue }>,
): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return goFormatFloat(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return Buffer.from(value).toString('utf8');
}

/** The format sops itself would pick from a file name (`secrets.enc.yaml` → yaml). */
export function sopsFormatForPath(path: string): SopsFormat {
  const name = path.toLowerCase(); // suffix checks, as sops does: a bare `.env` is dotenv too
  if (name.endsWith('.yaml') || name.endsWith('.yml')) return 'yaml';
  if (name.endsWith('.json')) return 'json';
  if (name.endsWith('.env')) return 'dotenv';
  if (name.endsWith('.ini')) return 'ini';
  throw sopsError(
    'unsupported',
    `cannot tell the SOPS format of ${path}: use a .yaml, .yml, .json, .env or .ini file`,
  );
}
