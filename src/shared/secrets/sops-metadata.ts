/**
 * Validates the `sops` metadata (already plain JS, whichever format it came from) into what
 * decryption needs: recipients per key group, the encryption rules, the MAC and its timestamp.
 * Mirrors sops's stores.Metadata.ToInternal, including its "at most one rule" check.
 */
import { sopsError } from './sops-tree.js';

export interface AgeRecipient {
  recipient: string;
  enc: string;
}
export interface PgpRecipient {
  fp: string;
  enc: string;
}
export interface KeyGroup {
  age: AgeRecipient[];
  pgp: PgpRecipient[];
  /** KMS, GCP KMS, Azure Key Vault, Vault transit: named for error messages, not usable here. */
  other: string[];
}

export interface EncryptionRules {
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: RegExp;
  encryptedRegex?: RegExp;
  /** encrypted_comment_regex / unencrypted_comment_regex: decided per value (see sops-values). */
  byComments: boolean;
}

export interface SopsMetadata {
  /** `lastmodified` as Go's time.Format(RFC3339) prints it: the MAC's additional data. */
  lastModified: string;
  mac: string;
  macOnlyEncrypted: boolean;
  rules: EncryptionRules;
  keyGroups: KeyGroup[];
  shamirThreshold: number;
}

type Raw = Record<string, unknown>;

export function parseMetadata(raw: unknown): SopsMetadata {
  if (!isRecord(raw)) throw malformed('the `sops` metadata is not a mapping');
  const mac = optionalString(raw, 'mac');
  if (!mac)
    throw sopsError(
      'mac-mismatch',
      'the file has no MAC (sops.mac); norn refuses files it cannot authenticate',
    );
  return {
    lastModified: normaliseTimestamp(optionalString(raw, 'lastmodified')),
    mac,
    macOnlyEncrypted: raw.mac_only_encrypted === true || raw.mac_only_encrypted === 'true',
    rules: parseRules(raw),
    keyGroups: parseKeyGroups(raw),
    shamirThreshold: parseThreshold(raw.shamir_threshold),
  };
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Go parses then re-formats the timestamp: fractions are dropped and a zero offset becomes `Z`. */
function normaliseTimestamp(value: string | undefined): string {
  const match = value === undefined ? null : RFC3339.exec(value);
  if (!match) throw malformed('sops.lastmodified is missing or not an RFC 3339 timestamp');
  const zone = match[2] === '+00:00' || match[2] === '-00:00' ? 'Z' : match[2]!;
  return `${match[1]!}${zone}`;
}

function parseRules(raw: Raw): EncryptionRules {
  const names = [
    'unencrypted_suffix',
    'encrypted_suffix',
    'unencrypted_regex',
    'encrypted_regex',
    'unencrypted_comment_regex',
    'encrypted_comment_regex',
  ] as const;
  const set = names.filter((name) => optionalString(raw, name));
  if (set.length > 1)
    throw malformed(`the metadata sets more than one encryption rule (${set.join(', ')})`);
  const rules: EncryptionRules = { byComments: set[0]?.endsWith('comment_regex') ?? false };
  if (set.length === 0) rules.unencryptedSuffix = '_unencrypted'; // sops's default
  const suffix = (name: string) => optionalString(raw, name) || undefined;
  rules.unencryptedSuffix ??= suffix('unencrypted_suffix');
  rules.encryptedSuffix = suffix('encrypted_suffix');
  rules.unencryptedRegex = goRegex(suffix('unencrypted_regex'));
  rules.encryptedRegex = goRegex(suffix('encrypted_regex'));
  return rules;
}

/** Go's RE2 syntax differs from JS in a few spellings; translate those, refuse the rest clearly. */
function goRegex(source: string | undefined): RegExp | undefined {
  if (source === undefined) return undefined;
  let body = source;
  let flags = '';
  const inline = /^\(\?([imsU]+)\)/.exec(body);
  if (inline) {
    if (inline[1]!.includes('U')) throw unsupportedRegex(source);
    flags = inline[1]!;
    body = body.slice(inline[0].length);
  }
  body = body.replaceAll('(?P<', '(?<').replaceAll('\\A', '^').replaceAll('\\z', '$');
  try {
    return new RegExp(body, flags);
  } catch {
    throw unsupportedRegex(source);
  }
}

function unsupportedRegex(source: string) {
  return sopsError(
    'unsupported',
    `the file's encryption regex ${JSON.stringify(source)} cannot be used here`,
  );
}

function parseKeyGroups(raw: Raw): KeyGroup[] {
  const flat = parseGroup(raw);
  if (flat.age.length + flat.pgp.length + flat.other.length > 0) return [flat];
  if (Array.isArray(raw.key_groups) && raw.key_groups.length > 0) {
    return raw.key_groups.map((group) => {
      if (!isRecord(group)) throw malformed('sops.key_groups holds an entry that is not a mapping');
      return parseGroup(group);
    });
  }
  throw malformed('the metadata lists no keys (no age, pgp or other recipients)');
}

function parseGroup(raw: Raw): KeyGroup {
  const age = entries(raw, 'age').map((entry) => ({
    recipient: requireString(entry, 'recipient', 'age'),
    enc: requireString(entry, 'enc', 'age'),
  }));
  const pgp = entries(raw, 'pgp').map((entry) => ({
    fp: requireString(entry, 'fp', 'pgp'),
    enc: requireString(entry, 'enc', 'pgp'),
  }));
  const other = [
    ...entries(raw, 'kms').map((entry) => `AWS KMS ${String(entry.arn)}`),
    ...entries(raw, 'gcp_kms').map((entry) => `GCP KMS ${String(entry.resource_id)}`),
    ...entries(raw, 'azure_kv').map(
      (entry) => `Azure Key Vault ${String(entry.vault_url)}/keys/${String(entry.name)}`,
    ),
    ...entries(raw, 'hc_vault').map(
      (entry) =>
        `Vault transit ${String(entry.vault_address)}/${String(entry.engine_path)}/${String(entry.key_name)}`,
    ),
  ];
  return { age, pgp, other };
}

/** A recipient list; sops writes `null` (or nothing) for an unused key type. */
function entries(raw: Raw, name: string): Raw[] {
  const value = raw[name];
  if (value === null || value === undefined || value === '') return [];
  if (!Array.isArray(value)) throw malformed(`sops.${name} is not a list`);
  return value.map((entry) => {
    if (!isRecord(entry)) throw malformed(`sops.${name} holds an entry that is not a mapping`);
    return entry;
  });
}

function parseThreshold(value: unknown): number {
  if (value === undefined || value === null || value === '') return 0;
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
    throw malformed('sops.shamir_threshold is not an integer');
  return n;
}

function optionalString(raw: Raw, name: string): string | undefined {
  const value = raw[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw malformed(`sops.${name} is not a string`);
  return value;
}

function requireString(raw: Raw, name: string, list: string): string {
  const value = raw[name];
  if (typeof value !== 'string' || value === '')
    throw malformed(`an entry of sops.${list} has no '${name}'`);
  return value;
}

function isRecord(value: unknown): value is Raw {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array)
  );
}

function malformed(message: string) {
  return sopsError('malformed', `not a valid SOPS file: ${message}`);
}
