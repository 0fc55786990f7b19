/**
 * Decrypts the values of a SOPS tree and recomputes its MAC exactly as sops's Tree.Decrypt does:
 * each value is AES-256-GCM with the data key, a 32-byte IV and the key path joined by ':' plus a
 * trailing ':' as additional data; the MAC is SHA-512 over the cleartext of every value (comments
 * excluded) in document order, printed as upper-case hex, and stored encrypted under `sops.mac`
 * with `lastmodified` as additional data. Decrypted values never appear in any message.
 */
import { createDecipheriv, createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { isNornError } from '../errors.js';
import type { EncryptionRules, SopsMetadata } from './sops-metadata.js';
import { defineKey, sopsError, TreeBranch, type PlainValue, type TreeValue } from './sops-tree.js';

/** sha256("sops"): sops seeds the hash with it when mac_only_encrypted is set. */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from(
  '8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69',
  'hex',
);
const ENC_VALUE = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const TAMPERED = 'MAC mismatch: the file was modified after it was encrypted';

interface Decrypted {
  value: PlainValue;
  /** What sops's ToBytes feeds the MAC for this value. */
  macBytes: Uint8Array;
}

/** Decrypts every value; returns the cleartext tree and the MAC computed over it. */
export function decryptTree(data: TreeBranch, meta: SopsMetadata, key: Uint8Array) {
  const hash = createHash('sha512');
  if (meta.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const tree = walk(data, [], { meta, key, hash }) as Record<string, PlainValue>;
  return { tree, computedMac: hash.digest('hex').toUpperCase() };
}

/** Refuses the document unless the stored MAC (decrypted) equals the computed one. */
export function verifyMac(meta: SopsMetadata, key: Uint8Array, computedMac: string): void {
  let stored: Decrypted;
  try {
    stored = decryptValue(meta.mac, key, meta.lastModified);
  } catch {
    throw sopsError('mac-mismatch', `${TAMPERED} (the stored MAC does not authenticate)`);
  }
  const a = Buffer.from(typeof stored.value === 'string' ? stored.value : '');
  const b = Buffer.from(computedMac);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw sopsError('mac-mismatch', `${TAMPERED} (the values do not match the stored MAC)`);
  }
}

interface WalkContext {
  meta: SopsMetadata;
  key: Uint8Array;
  hash: Hash;
}

function walk(value: TreeValue, path: string[], ctx: WalkContext): PlainValue {
  if (value instanceof TreeBranch) {
    const out: Record<string, PlainValue> = {};
    for (const [key, item] of value.items) defineKey(out, key, walk(item, [...path, key], ctx));
    return out;
  }
  if (Array.isArray(value)) return value.map((item) => walk(item, path, ctx)); // list items share the path
  if (value === null) return null; // sops neither encrypts nor hashes nulls
  const encrypted = ctx.meta.rules.byComments
    ? looksEncrypted(value)
    : shouldBeEncrypted(path, ctx.meta.rules);
  const result = encrypted
    ? decryptLeaf(value, path, ctx.key)
    : { value: clearValue(value), macBytes: macBytes(value) };
  if (encrypted || !ctx.meta.macOnlyEncrypted) ctx.hash.update(result.macBytes);
  return result.value;
}

/**
 * With comment-based rules the decision depends on comments we do not keep, so the value decides.
 * Still safe: unless mac_only_encrypted, the MAC covers every value either way.
 */
function looksEncrypted(value: TreeValue): boolean {
  return typeof value === 'string' && value.startsWith('ENC[AES256_GCM,');
}

/** sops's Tree.shouldBeEncrypted, minus the comment rules (handled by looksEncrypted). */
export function shouldBeEncrypted(path: string[], rules: EncryptionRules): boolean {
  let encrypted = true;
  if (rules.unencryptedSuffix && path.some((key) => key.endsWith(rules.unencryptedSuffix!)))
    encrypted = false;
  if (rules.encryptedSuffix) encrypted = path.some((key) => key.endsWith(rules.encryptedSuffix!));
  if (rules.unencryptedRegex && path.some((key) => rules.unencryptedRegex!.test(key)))
    encrypted = false;
  if (rules.encryptedRegex) encrypted = path.some((key) => rules.encryptedRegex!.test(key));
  return encrypted;
}

function decryptLeaf(value: TreeValue, path: string[], key: Uint8Array): Decrypted {
  const where = `'${path.join(':')}'`;
  if (typeof value !== 'string') {
    const why = `the value at ${where} is in clear text, but the file's rules require it to be encrypted`;
    throw sopsError('mac-mismatch', `${TAMPERED} (${why})`, { path: path.join(':') });
  }
  if (value === '') return { value: '', macBytes: new Uint8Array() }; // sops never encrypts empty strings
  try {
    return decryptValue(value, key, `${path.join(':')}:`);
  } catch (err) {
    if (isNornError(err)) throw err;
    const detail =
      err instanceof NotEncrypted ? 'is not a SOPS-encrypted value' : 'does not authenticate';
    throw sopsError('mac-mismatch', `${TAMPERED} (the value at ${where} ${detail})`, {
      path: path.join(':'),
    });
  }
}

class NotEncrypted extends Error {}

/** aes.Cipher.Decrypt from sops: parse ENC[...], open with AES-256-GCM, convert by `type`. */
export function decryptValue(enc: string, key: Uint8Array, additionalData: string): Decrypted {
  const match = ENC_VALUE.exec(enc);
  if (!match) throw new NotEncrypted();
  const [data, iv, tag] = [match[1]!, match[2]!, match[3]!].map((part) => {
    if (!BASE64.test(part)) throw new Error('bad base64');
    return Buffer.from(part, 'base64');
  }) as [Buffer, Buffer, Buffer];
  if (tag.length !== 16 || iv.length === 0) throw new Error('bad tag or iv');
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(additionalData, 'utf8'));
  decipher.setAuthTag(tag);
  const plain = Buffer.concat([decipher.update(data), decipher.final()]);
  return typed(plain, match[4]!);
}

function typed(plain: Buffer, type: string): Decrypted {
  const text = plain.toString('utf8');
  switch (type) {
    case 'str':
      return { value: text, macBytes: plain }; // hash the exact bytes, even if not valid UTF-8
    case 'int':
    case 'int64': {
      const n = parseGoInt(text);
      return {
        value: Number.isSafeInteger(Number(n)) ? Number(n) : n.toString(),
        macBytes: Buffer.from(n.toString()),
      };
    }
    case 'float': {
      const n = parseGoFloat(text);
      return { value: n, macBytes: Buffer.from(goFormatFloat(n)) };
    }
    case 'bool': {
      const b = parseGoBool(text);
      return { value: b, macBytes: Buffer.from(b ? 'True' : 'False') };
    }
    case 'bytes':
      return { value: new Uint8Array(plain), macBytes: plain };
    default: // 'comment' never sits where a value belongs; anything else is unknown to sops too
      throw sopsError(
        'malformed',
        `not a valid SOPS file: a value has the unsupported type '${type}'`,
      );
  }
}

function clearValue(value: Exclude<TreeValue, TreeBranch | TreeValue[] | null>): PlainValue {
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/** sops's ToBytes for a value stored in clear. */
function macBytes(value: Exclude<TreeValue, TreeBranch | TreeValue[] | null>): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'bigint') return Buffer.from(value.toString());
  if (typeof value === 'number') return Buffer.from(goFormatFloat(value));
  return Buffer.from(value ? 'True' : 'False');
}

function parseGoInt(text: string): bigint {
  if (!/^[+-]?\d+$/.test(text)) throw badTyped('int');
  const n = BigInt(text.replace(/^\+/, ''));
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw badTyped('int');
  return n;
}

function parseGoFloat(text: string): number {
  if (/^[+-]?(inf|infinity)$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(text)) return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw badTyped('float');
  const n = Number(text);
  if (!Number.isFinite(n)) throw badTyped('float'); // Go reports a range error
  return n;
}

function parseGoBool(text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw badTyped('bool');
}

function badTyped(type: string) {
  return sopsError(
    'malformed',
    `not a valid SOPS file: an encrypted ${type} value does not hold a valid ${type}`,
  );
}

/** Go's strconv.FormatFloat(n, 'f', -1, 64): shortest round-trip digits, never an exponent. */
export function goFormatFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : '-Inf';
  if (Object.is(n, -0)) return '-0';
  const text = String(n);
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign, lead, fraction = '', exponent] = match;
  const digits = lead! + fraction;
  const point = 1 + Number(exponent);
  if (point <= 0) return `${sign!}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign!}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign!}${digits.slice(0, point)}.${digits.slice(point)}`;
}
