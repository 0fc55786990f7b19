/**
 * Input checks for the git driver. A ref or URL comes from a deploy request or a webhook, so it is
 * untrusted: anything git could read as an option (`--upload-pack=…`, `-oProxyCommand=…`) or as a
 * command-running transport (`ext::sh -c …`) is refused here, before any git process starts.
 */
import { NornError } from '../errors.js';

const MAX_REF = 255;
const MAX_URL = 2048;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A full or abbreviated commit SHA (git needs at least 4 hex digits to look one up). */
export const HEX_SHA = /^[0-9a-f]{4,40}$/i;

function badRef(ref: string, why: string): NornError {
  const shown = CONTROL.test(ref) ? JSON.stringify(ref) : ref;
  return new NornError('BAD_REQUEST', `git ref ${shown.slice(0, 80)} refused: ${why}`, {
    details: { why },
  });
}

/**
 * Throws BAD_REQUEST unless `ref` is a plain branch, tag, `refs/…` name or commit SHA that follows
 * git's check-ref-format rules (with --allow-onelevel) and cannot be read as an option.
 */
export function assertSafeRef(ref: string): void {
  if (typeof ref !== 'string' || ref.length === 0) throw badRef(String(ref), 'it is empty');
  if (ref.length > MAX_REF) throw badRef(ref, `it is longer than ${MAX_REF} characters`);
  if (ref.startsWith('-')) throw badRef(ref, 'it starts with "-" and could be read as an option');
  if (CONTROL.test(ref)) throw badRef(ref, 'it contains control characters');
  if (/\s/.test(ref)) throw badRef(ref, 'it contains whitespace');
  if (/[~^:?*[\\]/.test(ref)) throw badRef(ref, 'it contains one of ~ ^ : ? * [ \\');
  if (ref.includes('..')) throw badRef(ref, 'it contains ".."');
  if (ref.includes('@{')) throw badRef(ref, 'it contains "@{"');
  if (ref === '@') throw badRef(ref, '"@" alone is not a ref');
  if (ref.startsWith('/') || ref.endsWith('/') || ref.includes('//'))
    throw badRef(ref, 'it has an empty path component');
  if (ref.endsWith('.')) throw badRef(ref, 'it ends with "."');
  for (const part of ref.split('/')) {
    if (part.startsWith('.')) throw badRef(ref, 'a path component starts with "."');
    if (part.endsWith('.lock')) throw badRef(ref, 'a path component ends with ".lock"');
  }
}

function badUrl(why: string): NornError {
  // The URL itself is left out: it may be garbage, or carry credentials someone pasted into it.
  return new NornError('BAD_REQUEST', `git repository URL refused: ${why}`, { details: { why } });
}

const SCP_LIKE = /^(?:([A-Za-z0-9._~-]+)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(.+)$/;

/**
 * Throws BAD_REQUEST unless `url` is https://, http://, ssh://, file://, an absolute local path or
 * an scp-like `user@host:path`. Remote-helper transports (`ext::`, `fd::`, …), git://, relative
 * paths, option-looking hosts or users, and passwords embedded in the URL are refused.
 */
export function assertSafeRepoUrl(url: string): void {
  if (typeof url !== 'string' || url.length === 0) throw badUrl('it is empty');
  if (url.length > MAX_URL) throw badUrl(`it is longer than ${MAX_URL} characters`);
  if (url.startsWith('-')) throw badUrl('it starts with "-" and could be read as an option');
  if (CONTROL.test(url)) throw badUrl('it contains control characters');
  if (url.trim() !== url) throw badUrl('it has leading or trailing whitespace');
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(url))
    throw badUrl('remote-helper transports such as ext:: are not allowed');

  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme) return checkSchemeUrl(url, scheme);
  if (url.startsWith('/')) return; // absolute local path
  const scp = SCP_LIKE.exec(url);
  if (scp) {
    const [, user, host] = scp;
    if (user?.startsWith('-') || host?.startsWith('-'))
      throw badUrl('the user or host starts with "-"');
    return;
  }
  throw badUrl('use https://, http://, ssh://, file://, user@host:path or an absolute path');
}

function checkSchemeUrl(url: string, scheme: string): void {
  if (!['https', 'http', 'ssh', 'file'].includes(scheme))
    throw badUrl(`the ${scheme}:// transport is not allowed`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badUrl('it is not a valid URL');
  }
  if (scheme === 'file') {
    if (parsed.hostname && parsed.hostname !== 'localhost')
      throw badUrl('file:// URLs must name a local path');
    if (parsed.pathname.length <= 1) throw badUrl('it has no path');
    return;
  }
  if (!parsed.hostname) throw badUrl('it has no host');
  if (parsed.hostname.startsWith('-') || parsed.username.startsWith('-'))
    throw badUrl('the user or host starts with "-"');
  if (parsed.password)
    throw badUrl(
      'it embeds a password; bind a token to the host with NORN_GIT_CREDENTIALS instead',
    );
}
