/**
 * The README's environment table, generated from EnvSchema (descriptions and defaults), so the
 * docs cannot drift from the code: `npx tsx src/shared/config-doc.ts` prints it, and a unit test
 * checks that the README contains it.
 */
import { EnvSchema } from './config.js';

/** Read by the deploy step's SOPS decryption (the way sops users configure keys), not by EnvSchema. */
export const SOPS_ENV: Array<[string, string]> = [
  ['SOPS_AGE_KEY', 'age identities (key text) for decrypting secrets.enc.yaml'],
  ['SOPS_AGE_KEY_FILE', 'file of age identities; `~/.config/sops/age/keys.txt` is also read'],
  [
    'NORN_SOPS_PGP_KEY',
    'armored PGP private key(s) for secrets encrypted to PGP (no gpg agent needed)',
  ],
  ['NORN_SOPS_PGP_KEY_FILE', 'file holding armored PGP private key(s)'],
  ['NORN_SOPS_PGP_PASSPHRASE', 'passphrase of those PGP keys, if any'],
];

interface ZodLike {
  description?: string;
  _zod: { def: { type: string; defaultValue?: unknown; innerType?: ZodLike } };
}

function defaultOf(schema: ZodLike): string {
  for (let s: ZodLike | undefined = schema; s; s = s._zod.def.innerType) {
    if (s._zod.def.type === 'default') return `\`${String(s._zod.def.defaultValue)}\``;
  }
  return '(unset)';
}

export function envTable(): string {
  const rows = Object.entries(EnvSchema.shape as Record<string, ZodLike>).map(
    ([name, schema]) =>
      `| \`${name}\` | ${defaultOf(schema)} | ${(schema.description ?? '').replace(/\|/g, '\\|')} |`,
  );
  const sops = SOPS_ENV.map(([name, what]) => `| \`${name}\` | (unset) | ${what} |`);
  return ['| variable | default | what it does |', '| --- | --- | --- |', ...rows, ...sops].join(
    '\n',
  );
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(envTable());
