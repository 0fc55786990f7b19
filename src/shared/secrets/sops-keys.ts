/**
 * Where SOPS keys come from (the places sops users already use) and how the per-file data key is
 * recovered with them: age identities through `age-encryption`, PGP private keys through `openpgp`
 * (there is no gpg agent here). Messages name public recipients and sources, never key material.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { armor, Decrypter, identityToRecipient } from 'age-encryption';
import * as openpgp from 'openpgp';
import { NornError } from '../errors.js';
import type { KeyGroup, SopsMetadata } from './sops-metadata.js';
import { sopsError } from './sops-tree.js';

export interface SopsKeys {
  /** `AGE-SECRET-KEY-1…` (or `AGE-SECRET-KEY-PQ-1…`) lines. */
  ageIdentities: string[];
  /** Armored `-----BEGIN PGP PRIVATE KEY BLOCK-----` texts, one key block each. */
  pgpPrivateKeys: string[];
  /** Unlocks passphrase-protected PGP keys. */
  pgpPassphrase?: string;
}

/**
 * Reads keys the way sops does for age (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE and the user's
 * `$XDG_CONFIG_HOME/sops/age/keys.txt` or `<home>/.config/sops/age/keys.txt`, all of them, in that
 * order) plus norn's PGP variables (NORN_SOPS_PGP_KEY, NORN_SOPS_PGP_KEY_FILE,
 * NORN_SOPS_PGP_PASSPHRASE). `homeDir` wins over env.HOME; without either, the default file is skipped.
 */
export async function keysFromEnv(
  env: Record<string, string | undefined>,
  homeDir?: string,
): Promise<SopsKeys> {
  const age: string[] = [];
  if (env.SOPS_AGE_KEY?.trim()) age.push(...parseAgeIdentities(env.SOPS_AGE_KEY, 'SOPS_AGE_KEY'));
  if (env.SOPS_AGE_KEY_FILE) {
    const text = await readKeyFile(env.SOPS_AGE_KEY_FILE, 'SOPS_AGE_KEY_FILE', true);
    age.push(...parseAgeIdentities(text ?? '', env.SOPS_AGE_KEY_FILE));
  }
  const defaultFile = defaultAgeKeyFile(env, homeDir);
  const defaultText = defaultFile
    ? await readKeyFile(defaultFile, 'the default age key file', false)
    : undefined;
  if (defaultFile && defaultText !== undefined)
    age.push(...parseAgeIdentities(defaultText, defaultFile));

  const pgp: string[] = [];
  if (env.NORN_SOPS_PGP_KEY?.trim())
    pgp.push(...splitArmoredKeys(env.NORN_SOPS_PGP_KEY, 'NORN_SOPS_PGP_KEY'));
  if (env.NORN_SOPS_PGP_KEY_FILE) {
    const text = await readKeyFile(env.NORN_SOPS_PGP_KEY_FILE, 'NORN_SOPS_PGP_KEY_FILE', true);
    pgp.push(...splitArmoredKeys(text ?? '', env.NORN_SOPS_PGP_KEY_FILE));
  }
  const keys: SopsKeys = { ageIdentities: [...new Set(age)], pgpPrivateKeys: [...new Set(pgp)] };
  if (env.NORN_SOPS_PGP_PASSPHRASE) keys.pgpPassphrase = env.NORN_SOPS_PGP_PASSPHRASE;
  return keys;
}

function defaultAgeKeyFile(
  env: Record<string, string | undefined>,
  homeDir: string | undefined,
): string | undefined {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg) return isAbsolute(xdg) ? join(xdg, 'sops', 'age', 'keys.txt') : undefined; // Go rejects a relative one
  const home = homeDir ?? env.HOME;
  return home ? join(home, '.config', 'sops', 'age', 'keys.txt') : undefined;
}

async function readKeyFile(
  path: string,
  what: string,
  required: boolean,
): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    throw new NornError(
      'CONFIG_INVALID',
      `${what}: cannot read ${path} (${code ?? 'read error'})`,
      { cause: err },
    );
  }
}

/** Parses keys.txt-style text; a bad line is named by number only (it could be a mistyped key). */
export function parseAgeIdentities(text: string, source: string): string[] {
  const identities: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `line ${index + 1} of ${source}`;
    if (line.startsWith('AGE-PLUGIN-')) {
      throw new NornError(
        'CONFIG_INVALID',
        `${where} is an age plugin identity; plugins are not supported, use a native age key`,
      );
    }
    try {
      new Decrypter().addIdentity(line); // validates the encoding and checksum
    } catch {
      throw new NornError(
        'CONFIG_INVALID',
        `${where} is not a valid age identity (expected AGE-SECRET-KEY-1…)`,
      );
    }
    identities.push(line);
  });
  return identities;
}

function splitArmoredKeys(text: string, source: string): string[] {
  const blocks =
    text.match(
      /-----BEGIN PGP PRIVATE KEY BLOCK-----[\s\S]*?-----END PGP PRIVATE KEY BLOCK-----/g,
    ) ?? [];
  if (blocks.length === 0) {
    throw new NornError(
      'CONFIG_INVALID',
      `${source} holds no armored PGP private key (-----BEGIN PGP PRIVATE KEY BLOCK-----)`,
    );
  }
  return blocks;
}

/**
 * openpgp v6 refuses DSA/ElGamal and short RSA keys by default. sops files are often encrypted to
 * long-lived GnuPG keys (classic DSA + ElGamal pairs, 1024-bit RSA), and decrypting a data key with
 * such a key weakens nothing new, so those checks are relaxed; unauthenticated (no-MDC) messages
 * stay refused.
 */
const PGP_CONFIG: openpgp.PartialConfig = {
  minRSABits: 1024,
  rejectPublicKeyAlgorithms: new Set<openpgp.enums.publicKey>(),
};

/** Recovers the 32-byte data key with the first recipient (age first, then PGP, as sops does) that opens. */
export async function recoverDataKey(meta: SopsMetadata, keys: SopsKeys): Promise<Uint8Array> {
  if (meta.keyGroups.length > 1) {
    const split = `${meta.keyGroups.length} key groups (Shamir, threshold ${meta.shamirThreshold})`;
    throw sopsError(
      'unsupported',
      `the file splits its data key over ${split}; norn supports single-group files only`,
      {
        recipients: meta.keyGroups.flatMap(describeRecipients),
      },
    );
  }
  const group = meta.keyGroups[0]!;
  const configured: string[] = [];
  if (keys.ageIdentities.length > 0) {
    const decrypter = ageDecrypter(keys.ageIdentities); // validates every identity first
    for (const entry of group.age) {
      const dataKey = await attempt(async () => decrypter.decrypt(armor.decode(entry.enc)));
      if (dataKey) return dataKey;
    }
    configured.push(
      ...(await Promise.all(
        keys.ageIdentities.map(async (id) => `age ${await identityToRecipient(id)}`),
      )),
    );
  }
  if (keys.pgpPrivateKeys.length > 0 && group.pgp.length === 0)
    configured.push(`${keys.pgpPrivateKeys.length} PGP key(s)`);
  if (keys.pgpPrivateKeys.length > 0 && group.pgp.length > 0) {
    const pgpKeys = await loadPgpKeys(keys);
    for (const entry of group.pgp) {
      const dataKey = await attempt(async () => {
        const message = await openpgp.readMessage({
          armoredMessage: entry.enc,
          config: PGP_CONFIG,
        });
        const result = await openpgp.decrypt({
          message,
          decryptionKeys: pgpKeys,
          format: 'binary',
          config: PGP_CONFIG,
        });
        return result.data;
      });
      if (dataKey) return dataKey;
    }
    configured.push(...pgpKeys.map((key) => `PGP ${key.getFingerprint().toUpperCase()}`));
  }
  throw noKeyError(group, configured);
}

/** A failed recipient is expected (another one may work); only a well-formed 32-byte key counts. */
async function attempt(open: () => Promise<Uint8Array>): Promise<Uint8Array | undefined> {
  try {
    const dataKey = await open();
    return dataKey.length === 32 ? dataKey : undefined;
  } catch {
    return undefined;
  }
}

function ageDecrypter(identities: string[]): Decrypter {
  const decrypter = new Decrypter();
  identities.forEach((identity, index) => {
    try {
      decrypter.addIdentity(identity);
    } catch {
      throw new NornError(
        'CONFIG_INVALID',
        `age identity #${index + 1} is not a valid age identity`,
      );
    }
  });
  return decrypter;
}

async function loadPgpKeys(keys: SopsKeys): Promise<openpgp.PrivateKey[]> {
  const loaded: openpgp.PrivateKey[] = [];
  for (const [index, armoredKeys] of keys.pgpPrivateKeys.entries()) {
    let found: openpgp.PrivateKey[];
    try {
      found = await openpgp.readPrivateKeys({ armoredKeys, config: PGP_CONFIG });
    } catch {
      throw new NornError(
        'CONFIG_INVALID',
        `PGP private key #${index + 1} could not be read (not an armored private key block)`,
      );
    }
    for (const key of found) loaded.push(await unlock(key, keys.pgpPassphrase));
  }
  return loaded;
}

async function unlock(
  key: openpgp.PrivateKey,
  passphrase: string | undefined,
): Promise<openpgp.PrivateKey> {
  if (key.isDecrypted()) return key;
  const fingerprint = key.getFingerprint().toUpperCase();
  if (!passphrase) {
    throw new NornError(
      'CONFIG_INVALID',
      `PGP key ${fingerprint} is protected by a passphrase; set NORN_SOPS_PGP_PASSPHRASE`,
    );
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase, config: PGP_CONFIG });
  } catch {
    throw new NornError('CONFIG_INVALID', `the passphrase does not unlock PGP key ${fingerprint}`);
  }
}

function describeRecipients(group: KeyGroup): string[] {
  return [
    ...group.age.map((entry) => `age ${entry.recipient}`),
    ...group.pgp.map((entry) => `PGP ${entry.fp}`),
    ...group.other,
  ];
}

function noKeyError(group: KeyGroup, configured: string[]): NornError {
  const recipients = describeRecipients(group);
  const have =
    configured.length === 0
      ? 'no SOPS keys are configured (age: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE or ~/.config/sops/age/keys.txt; ' +
        'PGP: NORN_SOPS_PGP_KEY or NORN_SOPS_PGP_KEY_FILE)'
      : `the configured keys are ${configured.join(', ')}`;
  const unusable =
    group.other.length > 0 ? ' (cloud KMS and Vault recipients cannot be used by norn)' : '';
  // A configured key that is a recipient yet failed means the stored data key itself is damaged.
  const matching = configured.filter((key) => recipients.includes(key));
  const damaged =
    matching.length > 0
      ? `; ${matching.join(', ')} should open it, so its encrypted data key is damaged`
      : '';
  return sopsError(
    'no-key',
    `cannot decrypt the SOPS data key: the file is encrypted for ${recipients.join(', ')}${unusable}, and ${have}${damaged}`,
    { recipients, configured },
  );
}
