/**
 * The environment every git process of the driver runs with: hermetic (no user/system git config,
 * no inherited GIT_* variables), never prompting, limited to safe transports, and carrying the
 * credentials in ways that stay off command lines (visible in `ps`) and out of `.git/config`.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NornError } from '../errors.js';
import { credentialFor, type CredentialMatch, type GitCredential } from './git-credentials.js';

export interface GitAuth {
  /** Tokens bound to hosts (NORN_GIT_CREDENTIALS, NORN_GIT_TOKEN + NORN_GIT_TOKEN_HOSTS). */
  credentials?: readonly GitCredential[];
  /** NORN_GIT_SSH_KEY: the private key text, or a path to it. */
  sshKey?: string;
}

export interface GitEnv {
  env: NodeJS.ProcessEnv;
  /** Strings that must never reach output or error messages. */
  secrets: string[];
  /** Which credential applies to the URL, or why none is sent (for error messages). */
  credential: CredentialMatch;
  /** Removes the temporary key material; safe to call more than once. */
  dispose(): Promise<void>;
}

/** Inherited variables git, curl and ssh legitimately need; everything else stays behind. */
const INHERITED = [
  'PATH',
  'HOME',
  'TMPDIR',
  'USER',
  'LOGNAME',
  'http_proxy',
  'https_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'no_proxy',
  'NO_PROXY',
  'all_proxy',
  'ALL_PROXY',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'GIT_SSL_CAINFO',
  'GIT_SSL_CAPATH',
];

/** Git config passed through GIT_CONFIG_COUNT/KEY_n/VALUE_n: read by git and its helpers, never written anywhere. */
const BASE_CONFIG: [string, string][] = [
  ['protocol.ext.allow', 'never'],
  ['credential.helper', ''], // an empty value resets the helper list: nothing stores or asks for credentials
  ['core.askPass', ''],
  ['init.defaultBranch', 'main'],
  ['advice.detachedHead', 'false'],
  ['core.hooksPath', '/dev/null'],
  // git's default, pinned: a redirect is followed on the first request only, and the credential
  // helper below answers only for the host its token is bound to, so no redirect can carry it on.
  ['http.followRedirects', 'initial'],
  // A server that sends nothing at all for two minutes is dead; an AbortSignal stops it sooner.
  ['http.lowSpeedLimit', '1'],
  ['http.lowSpeedTime', '120'],
];

const SSH_BASE = ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30'];

export async function createGitEnv(
  url: string,
  auth: GitAuth | undefined,
  base: NodeJS.ProcessEnv = process.env,
): Promise<GitEnv> {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED) if (base[name] !== undefined) env[name] = base[name];
  Object.assign(env, {
    LC_ALL: 'C', // English messages: errors are matched below to tell auth failures from network ones
    GIT_TERMINAL_PROMPT: '0',
    GIT_ALLOW_PROTOCOL: 'file:http:https:ssh',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    SSH_ASKPASS_REQUIRE: 'never',
  });
  const config = [...BASE_CONFIG];
  const secrets: string[] = [];
  let dispose = async () => {};

  const credential = credentialFor(url, auth?.credentials ?? []);
  if (credential.kind === 'send') {
    const token = credential.credential.token;
    config.push(['credential.helper', CREDENTIAL_HELPER]);
    Object.assign(env, {
      NORN_GIT_CRED_PROTOCOL: url.slice(0, url.indexOf(':')),
      NORN_GIT_CRED_HOST: gitCredentialHost(url),
      NORN_GIT_CRED_TOKEN: token,
    });
    secrets.push(token, Buffer.from(`${HELPER_USER}:${token}`).toString('base64'));
  }

  if (auth?.sshKey?.trim()) {
    const ssh = await writeSshKey(auth.sshKey);
    env.GIT_SSH_COMMAND = ssh.command;
    secrets.push(...ssh.secrets);
    dispose = ssh.dispose;
  } else {
    env.GIT_SSH_COMMAND = SSH_BASE.join(' ');
  }

  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return { env, secrets, credential, dispose };
}

const HELPER_USER = 'x-access-token'; // any user name works with GitHub, GitLab and Gitea tokens

/**
 * A git credential helper (git runs it with sh) that gives the token only when git asks for the
 * protocol and host the clone URL names, exactly as git spells them. git asks only after a server
 * answered 401, and asks again for the new host after a redirect, so neither a header sent to
 * every host (http.extraHeader was) nor a redirect can take the token anywhere else. The token
 * reaches the helper through git's environment, never a command line or a file.
 */
const CREDENTIAL_HELPER = [
  '!f() { test "$1" = get || return 0; p=; h=;',
  'while IFS= read -r l && test -n "$l"; do case "$l" in protocol=*) p=${l#protocol=};; host=*) h=${l#host=};; esac; done;',
  'test "$p" = "$NORN_GIT_CRED_PROTOCOL" && test "$h" = "$NORN_GIT_CRED_HOST" || return 0;',
  `printf 'username=${HELPER_USER}\npassword=%s\n' "$NORN_GIT_CRED_TOKEN"; }; f`,
].join(' ');

/** The `host` git's credential protocol names for a URL: its authority as written, user left out. */
function gitCredentialHost(url: string): string {
  const rest = url.slice(url.indexOf('://') + 3);
  const authority = rest.slice(0, rest.search(/[/?#]|$/));
  return authority.slice(authority.lastIndexOf('@') + 1);
}

/** Quotes one word for the POSIX shell git runs GIT_SSH_COMMAND with. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function looksLikeKeyText(value: string): boolean {
  return value.includes('\n') || /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value);
}

async function loadKey(sshKey: string): Promise<{ text: string; fromText: boolean }> {
  if (looksLikeKeyText(sshKey)) return { text: sshKey, fromText: true };
  try {
    return { text: await readFile(sshKey.trim(), 'utf8'), fromText: false };
  } catch (err) {
    // The value is neither key text nor a readable file: do not echo it, it may be a mangled key.
    throw new NornError(
      'BAD_REQUEST',
      'NORN_GIT_SSH_KEY is neither private key text nor a readable key file',
      {
        cause: (err as NodeJS.ErrnoException).code,
      },
    );
  }
}

/**
 * Copies the key into a fresh 0700 temp dir outside the clone (ssh refuses group-readable keys,
 * and a copy keeps odd paths out of the shell command), next to an empty known_hosts file.
 */
async function writeSshKey(
  sshKey: string,
): Promise<{ command: string; secrets: string[]; dispose: () => Promise<void> }> {
  const { text, fromText } = await loadKey(sshKey);
  // OpenSSH rejects keys without a final newline or with CRLF line ends (common after copy-paste);
  // a key squeezed into one env line often carries literal "\n" sequences instead of newlines.
  const lines = text.includes('\n') ? text : text.replace(/\\n/g, '\n');
  const normalized = `${lines.replace(/\r\n/g, '\n').trim()}\n`;
  const dir = await mkdtemp(join(tmpdir(), 'norn-git-ssh-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const keyFile = join(dir, 'id');
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(keyFile, normalized, { mode: 0o600, flag: 'wx' });
    await writeFile(knownHosts, '', { mode: 0o600, flag: 'wx' });
    const command = [
      ...SSH_BASE,
      '-i',
      shellQuote(keyFile),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      shellQuote(`UserKnownHostsFile=${knownHosts}`),
    ].join(' ');
    const secrets = fromText ? [sshKey, normalized.trim()] : [normalized.trim()];
    return { command, secrets, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
