import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { armor, Decrypter } from 'age-encryption';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import {
  decryptSecretsEnv,
  decryptSops,
  keysFromEnv,
  sopsFormatForPath,
  type SopsFormat,
  type SopsKeys,
} from '../../src/shared/secrets/sops.js';
import { goFormatFloat } from '../../src/shared/secrets/sops-values.js';

// Real files written by the sops tool (getsops/sops test vectors, MPL-2.0).
const FIXTURES = resolve('test/fixtures/sops'); // copies of ../shared/fixtures/sops (files made by the real sops tool)
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const AGE_KEYS = fixture('age/keys.txt');
const PGP_KEY = fixture('sops_functional_tests_key.asc');
const PGP_FP = 'FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4';
const ageOnly: SopsKeys = {
  ageIdentities: AGE_KEYS.split('\n').filter((l) => l.startsWith('AGE-SECRET-KEY-')),
  pgpPrivateKeys: [],
};
// The key file holds two private keys (RSA 2048, which the files are encrypted for, and RSA 1024).
const PGP_BLOCKS = PGP_KEY.match(
  /-----BEGIN PGP PRIVATE KEY BLOCK-----[\s\S]*?-----END PGP PRIVATE KEY BLOCK-----/g,
)!;
const pgpOnly: SopsKeys = { ageIdentities: [], pgpPrivateKeys: PGP_BLOCKS };
const noKeys: SopsKeys = { ageIdentities: [], pgpPrivateKeys: [] };

const PERSON = {
  firstName: 'John',
  lastName: 'Smith',
  age: 25.4,
  address: {
    city: 'New York',
    postalCode: '10021-3100',
    state: 'NY',
    streetAddress: '21 2nd Street',
  },
  phoneNumbers: [
    { number: '212 555-1234', type: 'home' },
    { number: '646 555-4567', type: 'office' },
  ],
  anEmptyValue: '',
};

/** Resolves to the thrown error so its code, reason and message can all be checked. */
async function failure(promise: Promise<unknown>) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isNornError(err)) throw new Error(`expected a NornError, got ${String(err)}`);
  return err;
}

/** Replaces the first base64 character after the n-th `data:` with a different one. */
function flipData(text: string, occurrence = 0): string {
  let at = -1;
  for (let i = 0; i <= occurrence; i++) at = text.indexOf('data:', at + 1);
  const pos = at + 'data:'.length;
  return text.slice(0, pos) + (text[pos] === 'A' ? 'B' : 'A') + text.slice(pos + 1);
}

describe('decryptSops on files written by sops', () => {
  it.each([
    ['format.enc.yaml', 'yaml', { foo: 'bar' }],
    ['format.enc.json', 'json', { foo: 'bar' }],
    // sops's dotenv store splits at the first '=' and trims nothing: `foo = bar` became these.
    ['format.enc.env', 'dotenv', { 'foo ': ' bar' }],
  ] as const)('opens %s with the PGP key alone', async (name, format, expected) => {
    expect(await decryptSops(fixture(name), format, pgpOnly)).toEqual(expected);
  });

  it('opens the age JSON file (floats, lists, nested maps, empty values)', async () => {
    expect(await decryptSops(fixture('age/example.json'), 'json', ageOnly)).toEqual(PERSON);
  });

  it('opens the age INI file, keeping the _unencrypted value as written', async () => {
    expect(await decryptSops(fixture('age/example.ini'), 'ini', ageOnly)).toEqual({
      name: { firstName: 'John', lastName: 'Smith', age: '25.4' },
      address: PERSON.address,
      phoneNumbers: { home: '212 555-1234', office: '646 555-4567' },
      'not private': { notsecret_unencrypted: 'hi there!' },
    });
  });

  it('tries every age recipient: the second identity alone opens the file', async () => {
    const second = ageOnly.ageIdentities[1]!;
    const tree = await decryptSops(fixture('age/example.json'), 'json', {
      ageIdentities: [second],
      pgpPrivateKeys: [],
    });
    expect(tree.firstName).toBe('John');
  });

  it('refuses a plain (unencrypted) file as not a SOPS file', async () => {
    const err = await failure(decryptSops(fixture('plainfile.yaml'), 'yaml', ageOnly));
    expect(err.code).toBe('SECRETS_INVALID');
    expect(err.details).toMatchObject({ reason: 'not-sops' });
    expect(err.message).toMatch(/not a SOPS-encrypted file/);
  });
});

describe('tampering is refused', () => {
  const refusedAsTampered = async (text: string, format: SopsFormat, keys: SopsKeys) => {
    const err = await failure(decryptSops(text, format, keys));
    expect(err.code).toBe('SECRETS_INVALID');
    expect(err.details).toMatchObject({ reason: 'mac-mismatch' });
    expect(err.message).toContain('MAC mismatch: the file was modified after it was encrypted');
    return err;
  };

  it('refuses a flipped character inside an encrypted value, without showing any value', async () => {
    const err = await refusedAsTampered(flipData(fixture('format.enc.yaml')), 'yaml', pgpOnly);
    expect(err.message).toContain("'foo'");
    expect(err.message).not.toContain('bar');
  });

  it('refuses a flipped character inside the MAC', async () => {
    const text = fixture('format.enc.json');
    const macAt = text.indexOf('"mac"');
    await refusedAsTampered(text.slice(0, macAt) + flipData(text.slice(macAt)), 'json', pgpOnly);
  });

  it('refuses a changed lastmodified (it authenticates the MAC)', async () => {
    const text = fixture('format.enc.env').replace(
      'sops_lastmodified=2026-05-22T20:15:29Z',
      'sops_lastmodified=2026-05-22T20:15:30Z',
    );
    await refusedAsTampered(text, 'dotenv', pgpOnly);
  });

  it('refuses a changed _unencrypted value (the MAC covers it)', async () => {
    const text = fixture('age/example.ini').replace('hi there!', 'hi there?');
    await refusedAsTampered(text, 'ini', ageOnly);
  });

  it('refuses an added clear-text value', async () => {
    const text = fixture('age/example.json').replace(
      '"anEmptyValue": ""',
      '"anEmptyValue": "", "injected_unencrypted": "x"',
    );
    await refusedAsTampered(text, 'json', ageOnly);
  });

  it('refuses a removed value', async () => {
    const text = fixture('age/example.json').replace(/\s*"state": "ENC\[[^"]*",/, '');
    await refusedAsTampered(text, 'json', ageOnly);
  });

  it('refuses swapped encrypted values (each is bound to its key path)', async () => {
    const text = fixture('age/example.json');
    const first = /"firstName": ("ENC\[[^"]*")/.exec(text)![1]!;
    const last = /"lastName": ("ENC\[[^"]*")/.exec(text)![1]!;
    const swapped = text.replace(first, '@@').replace(last, first).replace('@@', last);
    const err = await refusedAsTampered(swapped, 'json', ageOnly);
    expect(err.message).not.toMatch(/John|Smith/);
  });

  it('refuses a value replaced by clear text where the rules require encryption', async () => {
    const asString = fixture('format.enc.yaml').replace(/^foo: ENC\[.*$/m, 'foo: hello');
    const err = await refusedAsTampered(asString, 'yaml', pgpOnly);
    expect(err.message).toContain("the value at 'foo' is not a SOPS-encrypted value");
    expect(err.message).not.toContain('hello');
    const asNumber = fixture('format.enc.yaml').replace(/^foo: ENC\[.*$/m, 'foo: 4242');
    const numberErr = await refusedAsTampered(asNumber, 'yaml', pgpOnly);
    expect(numberErr.message).toContain('clear text');
    expect(numberErr.message).not.toContain('4242');
  });

  it('ignores a damaged encrypted comment, as sops does (comments are not authenticated)', async () => {
    const text = fixture('age/example.ini');
    expect(text.indexOf('type:comment')).toBeLessThan(text.indexOf('firstName'));
    const tree = await decryptSops(flipData(text), 'ini', ageOnly);
    expect(tree.name).toMatchObject({ firstName: 'John' });
  });

  it('refuses a file without a MAC', async () => {
    const text = fixture('format.enc.yaml').replace(/^ {4}mac: .*\n/m, '');
    const err = await failure(decryptSops(text, 'yaml', pgpOnly));
    expect(err.details).toMatchObject({ reason: 'mac-mismatch' });
  });
});

describe('keys that cannot open the file', () => {
  it('names the PGP fingerprint the file is encrypted for, and the configured age keys', async () => {
    const err = await failure(decryptSops(fixture('format.enc.yaml'), 'yaml', ageOnly));
    expect(err.details).toMatchObject({ reason: 'no-key', recipients: [`PGP ${PGP_FP}`] });
    expect(err.message).toContain(PGP_FP);
    expect(err.message).toContain('age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw');
    expect(err.message).not.toContain('AGE-SECRET-KEY');
  });

  it('names the age recipients, and says how to configure keys when none are', async () => {
    const err = await failure(decryptSops(fixture('age/example.json'), 'json', noKeys));
    expect(err.message).toContain(
      'age age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw',
    );
    expect(err.message).toContain(
      'age age1tmaae3ld5vpevmsh5yacsauzx8jetg300mpvc4ugp5zr5l6ssq9sla97ep',
    );
    expect(err.message).toContain('SOPS_AGE_KEY');
  });

  it('says when a matching key cannot open a damaged data key', async () => {
    const text = fixture('age/example.json').replace(
      /YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0\+IFgyNTUxOSB/g,
      'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSA',
    );
    const err = await failure(decryptSops(text, 'json', ageOnly));
    expect(err.details).toMatchObject({ reason: 'no-key' });
    expect(err.message).toContain('encrypted data key is damaged');
  });

  it('refuses an invalid age identity without echoing it', async () => {
    const bad = `${ageOnly.ageIdentities[0]!.slice(0, -1)}X`;
    const err = await failure(
      decryptSops(fixture('age/example.json'), 'json', {
        ageIdentities: [bad],
        pgpPrivateKeys: [],
      }),
    );
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).not.toContain(bad);
  });
});

describe('passphrase-protected PGP keys', () => {
  let protectedKey: string;
  let reencrypted: string;
  beforeAll(async () => {
    // Re-wrap the fixture's data key for a fresh protected key; the MAC does not cover recipients.
    const generated = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ name: 't' }],
      passphrase: 'pw',
      format: 'armored',
    });
    protectedKey = generated.privateKey;
    const original = fixture('format.enc.json');
    const meta = JSON.parse(original).sops as { pgp: Array<{ enc: string }> };
    const { data: dataKey } = await openpgp.decrypt({
      message: await openpgp.readMessage({ armoredMessage: meta.pgp[0]!.enc }),
      decryptionKeys: await openpgp.readPrivateKey({ armoredKey: PGP_KEY }),
      format: 'binary',
    });
    const enc = await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: dataKey }),
      encryptionKeys: await openpgp.readKey({ armoredKey: generated.publicKey }),
    });
    reencrypted = original.replace(JSON.stringify(meta.pgp[0]!.enc), JSON.stringify(enc));
  });

  it('opens the file with the passphrase', async () => {
    const keys = { ageIdentities: [], pgpPrivateKeys: [protectedKey], pgpPassphrase: 'pw' };
    expect(await decryptSops(reencrypted, 'json', keys)).toEqual({ foo: 'bar' });
  });

  it('asks for NORN_SOPS_PGP_PASSPHRASE without one, and refuses a wrong one', async () => {
    const without = await failure(
      decryptSops(reencrypted, 'json', { ageIdentities: [], pgpPrivateKeys: [protectedKey] }),
    );
    expect(without.message).toContain('NORN_SOPS_PGP_PASSPHRASE');
    const wrong = await failure(
      decryptSops(reencrypted, 'json', {
        ageIdentities: [],
        pgpPrivateKeys: [protectedKey],
        pgpPassphrase: 'nope',
      }),
    );
    expect(wrong.code).toBe('CONFIG_INVALID');
  });
});

describe('mac_only_encrypted', () => {
  /** Rebuilds example.ini's MAC the way sops does with the flag: sha256("sops") seed, encrypted values only. */
  async function withMacOnlyEncrypted(text: string): Promise<string> {
    const decrypter = new Decrypter();
    for (const id of ageOnly.ageIdentities) decrypter.addIdentity(id);
    const encLine = /^age__list_0__map_enc\s*= (.*)$/m.exec(text)![1]!.replaceAll('\\n', '\n');
    const dataKey = await decrypter.decrypt(armor.decode(encLine));
    const values = [
      'John',
      'Smith',
      '25.4',
      'New York',
      '10021-3100',
      'NY',
      '21 2nd Street',
      '212 555-1234',
      '646 555-4567',
    ];
    const hash = createHash('sha512').update(
      Buffer.from(createHash('sha256').update('sops').digest()),
    );
    for (const value of values) hash.update(value);
    const lastModified = /^lastmodified\s*= (.*)$/m.exec(text)![1]!;
    const iv = randomBytes(32);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv).setAAD(Buffer.from(lastModified));
    const data = Buffer.concat([cipher.update(hash.digest('hex').toUpperCase()), cipher.final()]);
    const mac = `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${cipher.getAuthTag().toString('base64')},type:str]`;
    return text.replace(/^mac\s*= .*$/m, `mac = ${mac}\nmac_only_encrypted = true`);
  }

  it('lets clear-text values change, but still authenticates the encrypted ones', async () => {
    const text = await withMacOnlyEncrypted(fixture('age/example.ini'));
    const edited = text.replace('hi there!', 'changed');
    const tree = await decryptSops(edited, 'ini', ageOnly);
    expect(tree['not private']).toEqual({ notsecret_unencrypted: 'changed' });
    const err = await failure(decryptSops(flipData(edited, 1), 'ini', ageOnly)); // 0 is the comment
    expect(err.details).toMatchObject({ reason: 'mac-mismatch' });
  });
});

describe('decryptSecretsEnv', () => {
  it('returns a flat name → value map', async () => {
    expect(await decryptSecretsEnv(fixture('format.enc.yaml'), 'yaml', pgpOnly)).toEqual({
      foo: 'bar',
    });
  });

  it('lists the keys that hold nested values', async () => {
    const err = await failure(decryptSecretsEnv(fixture('age/example.json'), 'json', ageOnly));
    expect(err.details).toMatchObject({ reason: 'not-flat', keys: ['address', 'phoneNumbers'] });
    expect(err.message).toContain("'address', 'phoneNumbers'");
    expect(err.message).not.toMatch(/John|New York/);
  });

  it('refuses names that cannot be environment variables, quoting them', async () => {
    const err = await failure(decryptSecretsEnv(fixture('format.enc.env'), 'dotenv', pgpOnly));
    expect(err.message).toContain('"foo "');
    expect(err.message).not.toContain('bar');
  });
});

describe('keysFromEnv', () => {
  let dir: string;
  let first: string;
  let second: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'norn-sops-'));
    [first, second] = ageOnly.ageIdentities as [string, string];
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function keyFile(path: string, text: string) {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, text);
    return path;
  }

  it('uses SOPS_AGE_KEY, then SOPS_AGE_KEY_FILE, then the XDG default file, without duplicates', async () => {
    const file = await keyFile(join(dir, 'a', 'keys.txt'), `# comment\n${second}\n`);
    const xdg = join(dir, 'xdg');
    await keyFile(join(xdg, 'sops', 'age', 'keys.txt'), `${first}\n${second}\n`);
    const keys = await keysFromEnv({
      SOPS_AGE_KEY: `  ${first}\n\n`,
      SOPS_AGE_KEY_FILE: file,
      XDG_CONFIG_HOME: xdg,
      HOME: '/nonexistent',
    });
    expect(keys.ageIdentities).toEqual([first, second]);
  });

  it('falls back to <home>/.config/sops/age/keys.txt; homeDir wins over HOME', async () => {
    const home = join(dir, 'home');
    await keyFile(join(home, '.config', 'sops', 'age', 'keys.txt'), `${second}\n`);
    expect((await keysFromEnv({ HOME: home })).ageIdentities).toEqual([second]);
    expect((await keysFromEnv({ HOME: '/nonexistent' }, home)).ageIdentities).toEqual([second]);
    expect(await keysFromEnv({ HOME: '/nonexistent' })).toEqual({
      ageIdentities: [],
      pgpPrivateKeys: [],
    });
  });

  it('fails clearly when SOPS_AGE_KEY_FILE does not exist', async () => {
    const err = await failure(keysFromEnv({ SOPS_AGE_KEY_FILE: join(dir, 'missing.txt') }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('missing.txt');
  });

  it('names a bad identity line by number, never by content', async () => {
    const err = await failure(keysFromEnv({ SOPS_AGE_KEY: `${first}\nAGE-SECRET-KEY-1NOTAKEY` }));
    expect(err.message).toContain('line 2 of SOPS_AGE_KEY');
    expect(err.message).not.toContain('NOTAKEY');
  });

  it('reads PGP keys from NORN_SOPS_PGP_KEY(_FILE) and the passphrase', async () => {
    const file = await keyFile(join(dir, 'pgp.asc'), PGP_KEY);
    const keys = await keysFromEnv({
      NORN_SOPS_PGP_KEY: PGP_KEY,
      NORN_SOPS_PGP_KEY_FILE: file,
      NORN_SOPS_PGP_PASSPHRASE: 'pw',
    });
    expect(keys.pgpPrivateKeys).toEqual(PGP_BLOCKS); // split into blocks; the same key twice is kept once
    expect(keys.pgpPassphrase).toBe('pw');
    expect(await decryptSops(fixture('format.enc.json'), 'json', keys)).toEqual({ foo: 'bar' });
  });
});

describe('helpers', () => {
  it('prints floats like Go strconv.FormatFloat(f, "f", -1, 64)', () => {
    expect([25.4, 1e21, 1e-7, 0.1 + 0.2, -0, 1234.56789, -1.5e-10].map(goFormatFloat)).toEqual([
      '25.4',
      '1000000000000000000000',
      '0.0000001',
      '0.30000000000000004',
      '-0',
      '1234.56789',
      '-0.00000000015',
    ]);
  });

  it('picks the format from the file name like sops', () => {
    expect(['secrets.enc.yaml', 'a.yml', 'b.json', '.env', 'c.ini'].map(sopsFormatForPath)).toEqual(
      ['yaml', 'yaml', 'json', 'dotenv', 'ini'],
    );
    expect(() => sopsFormatForPath('secrets.bin')).toThrow(/cannot tell the SOPS format/);
  });
});
