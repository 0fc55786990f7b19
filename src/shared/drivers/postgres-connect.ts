/**
 * Connection helpers shared by the PostgreSQL drivers (snapshot, migrations): building an app's
 * database URL from the admin server URL, keeping the password out of argv and messages, and pg
 * clients that give up promptly when their AbortSignal fires.
 */
import pg from 'pg';
import { NornError } from '../errors.js';
import { redactText } from '../exec.js';

const CONNECT_TIMEOUT_MS = 10_000;

function parseUrl(url: string): URL {
  try {
    const u = new URL(url);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('scheme');
    return u;
  } catch {
    // No cause and no input in the message: the URL may carry a password.
    throw new NornError('BAD_REQUEST', 'the PostgreSQL URL is not a valid postgres:// URL');
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The server URL with its database replaced by `database` (the rest, including the password, kept). */
export function databaseUrlFor(serverUrl: string, database: string): string {
  if (!database) throw new NornError('BAD_REQUEST', 'a database name is required');
  const u = parseUrl(serverUrl);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Strings that must never be shown: the password in its raw and URL-encoded forms. */
export function urlSecrets(url: string): string[] {
  const u = parseUrl(url);
  const raw = [u.password, u.searchParams.get('password') ?? ''];
  const out: string[] = [];
  for (const s of raw) {
    if (!s) continue;
    out.push(s, safeDecode(s), encodeURIComponent(s));
  }
  return [...new Set(out)];
}

export interface CliConnection {
  /** For `--dbname=`: the URL without any password. */
  url: string;
  /** Extra environment for libpq tools: PGPASSWORD when the URL had a password. */
  env: Record<string, string>;
  redact: string[];
}

/**
 * How a libpq command-line tool reaches `database`: the password travels in PGPASSWORD, never in
 * argv, where `ps` and error messages would show it.
 */
export function cliConnection(serverUrl: string, database: string): CliConnection {
  const u = parseUrl(databaseUrlFor(serverUrl, database));
  const redact = urlSecrets(u.toString());
  let password = '';
  if (u.password) password = safeDecode(u.password);
  const inQuery = u.searchParams.get('password');
  if (inQuery !== null) {
    password ||= inQuery;
    u.searchParams.delete('password');
  }
  u.password = '';
  const env: Record<string, string> = { PGCONNECT_TIMEOUT: String(CONNECT_TIMEOUT_MS / 1000) };
  if (password) env.PGPASSWORD = password;
  return { url: u.toString(), env, redact };
}

/** A connected pg client; an abort while connecting closes it and throws CANCELLED. */
export async function connectClient(
  url: string,
  options: { signal?: AbortSignal; applicationName: string; what: string },
): Promise<pg.Client> {
  const { signal } = options;
  if (signal?.aborted) throw cancelled(options.what);
  const client = new pg.Client({
    connectionString: url,
    application_name: options.applicationName,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // A connection lost while idle must not crash the process; the next query reports it.
  client.on('error', () => {});
  const onAbort = () => void client.end().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    if (signal?.aborted) throw cancelled(options.what);
    throw connectionError(err, options.what, urlSecrets(url));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return client;
}

/** Major version of the server `client` is connected to (e.g. 15 for 15.4, 9 for 9.6). */
export async function serverMajorVersion(client: pg.Client): Promise<number> {
  const res = await client.query<{ server_version_num: string }>('SHOW server_version_num');
  return Math.floor(Number(res.rows[0]?.server_version_num) / 10_000);
}

export function cancelled(what: string): NornError {
  return new NornError('CANCELLED', `${what} cancelled`);
}

/** The SQLSTATE of a PostgreSQL error, if `err` is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A connect failure as an operator-readable error; a missing database is NOT_FOUND, not retryable. */
export function connectionError(err: unknown, what: string, secrets: string[]): NornError {
  const message = redactText(err instanceof Error ? err.message : String(err), secrets);
  const state = sqlState(err);
  if (state === '3D000') return new NornError('NOT_FOUND', `${what}: ${message}`);
  // Authentication and permission problems do not heal by retrying; network ones may.
  const retryable = state === undefined || state.startsWith('08') || state.startsWith('57P');
  return new NornError('UNAVAILABLE', `${what}: cannot connect to PostgreSQL: ${message}`, {
    retryable,
  });
}
