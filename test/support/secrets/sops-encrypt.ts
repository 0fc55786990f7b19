/**
 * Writes a SOPS-encrypted YAML file (as `sops --encrypt --age <recipient>` does) from a flat map of
 * strings, so a test can use secret values of its own, distinctive enough to be searched for. The
 * format is sops's: each value AES-256-GCM under a fresh data key with a 32-byte IV and its key
 * path plus ':' as additional data; the MAC is SHA-512 over the values in document order (upper
 * hex), encrypted with `lastmodified` as additional data; the data key is age-encrypted and
 * armored. norn's own decryptor (src/shared/secrets) is what reads it back; the real sops fixtures
 * in test/fixtures/sops prove that decryptor against files sops made.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { armor, Encrypter } from 'age-encryption';
import { stringify } from 'yaml';

function encryptValue(plain: string, key: Buffer, additionalData: string): string {
  const iv = randomBytes(32);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(additionalData, 'utf8'));
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${tag.toString('base64')},type:str]`;
}

export async function sopsEncryptYaml(
  values: Record<string, string>,
  ageRecipient: string,
): Promise<string> {
  const dataKey = randomBytes(32);
  const lastmodified = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const mac = createHash('sha512');
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    doc[k] = encryptValue(v, dataKey, `${k}:`);
    mac.update(Buffer.from(v, 'utf8'));
  }
  const encrypter = new Encrypter();
  encrypter.addRecipient(ageRecipient);
  const enc = armor.encode(await encrypter.encrypt(dataKey));
  doc.sops = {
    age: [{ recipient: ageRecipient, enc }],
    lastmodified,
    mac: encryptValue(mac.digest('hex').toUpperCase(), dataKey, lastmodified),
    unencrypted_suffix: '_unencrypted',
    version: '3.9.0',
  };
  return stringify(doc);
}
