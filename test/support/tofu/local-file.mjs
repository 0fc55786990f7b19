/**
 * The one resource type the stand-in knows: `local_file` of hashicorp/local, as
 * terraform-provider-local internal/provider/resource_local_file.go has it:
 * - arguments filename (required), exactly one of content / content_base64 / source /
 *   sensitive_content, file_permission and directory_permission (default "0777");
 * - every argument RequiresReplace, so any change to one is a replacement, never an update;
 * - computed id = hex sha1 of the content, and content_md5 / _sha1 / _sha256 / _base64sha256 /
 *   _sha512 / _base64sha512;
 * - Read removes the object from state when the file is missing or its sha1 is not the id (so a
 *   hand-edited file is planned as a create after "has been deleted" drift, not as an update);
 * - Delete removes the file and ignores errors.
 * The stand-in accepts content and content_base64; source and sensitive_content it refuses.
 */
import { createHash } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const PROVIDER = 'registry.opentofu.org/hashicorp/local';
export const PROVIDER_VERSION = '2.5.2';

export const ARGUMENTS = [
  'content',
  'content_base64',
  'directory_permission',
  'file_permission',
  'filename',
  'sensitive_content',
  'source',
];
export const COMPUTED = [
  'content_base64sha256',
  'content_base64sha512',
  'content_md5',
  'content_sha1',
  'content_sha256',
  'content_sha512',
  'id',
];
export const CONTENT_ARGS = ['content', 'sensitive_content', 'content_base64', 'source'];
export const UNSUPPORTED_BY_STANDIN = ['source', 'sensitive_content'];

/** The planned argument values (computed ones are unknown until apply). */
export function plannedArgs(args) {
  return {
    content: args.content ?? null,
    content_base64: args.content_base64 ?? null,
    directory_permission: args.directory_permission ?? '0777',
    file_permission: args.file_permission ?? '0777',
    filename: args.filename,
    sensitive_content: null,
    source: null,
  };
}

/** Which arguments differ between the state and the plan (each forces replacement). */
export function replacePaths(before, after) {
  return ARGUMENTS.filter((k) => (before[k] ?? null) !== (after[k] ?? null)).map((k) => [k]);
}

function bytesOf(attrs) {
  return attrs.content_base64 !== null
    ? Buffer.from(attrs.content_base64, 'base64')
    : Buffer.from(attrs.content ?? '', 'utf8');
}

const hash = (alg, bytes, enc = 'hex') => createHash(alg).update(bytes).digest(enc);

/** Create: writes the file (mkdir -p first) and returns every attribute, computed ones filled. */
export function create(planned) {
  const bytes = bytesOf(planned);
  const dir = dirname(planned.filename);
  try {
    statSync(dir);
  } catch {
    mkdirSync(dir, { recursive: true, mode: parseInt(planned.directory_permission, 8) });
  }
  writeFileSync(planned.filename, bytes, { mode: parseInt(planned.file_permission, 8) });
  // Like os.WriteFile, the mode applies only to a new file; an existing file keeps its own.
  return {
    ...planned,
    content_base64sha256: hash('sha256', bytes, 'base64'),
    content_base64sha512: hash('sha512', bytes, 'base64'),
    content_md5: hash('md5', bytes),
    content_sha1: hash('sha1', bytes),
    content_sha256: hash('sha256', bytes),
    content_sha512: hash('sha512', bytes),
    id: hash('sha1', bytes),
  };
}

/** Read (refresh): the attributes if the file is still what the state says, else null (gone). */
export function read(attrs) {
  let bytes;
  try {
    bytes = readFileSync(attrs.filename);
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
  return hash('sha1', bytes) === attrs.id ? attrs : null;
}

export function remove(attrs) {
  rmSync(attrs.filename, { force: true });
}
