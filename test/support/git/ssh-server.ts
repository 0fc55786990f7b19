/**
 * A throwaway OpenSSH server on 127.0.0.1 for git-over-ssh tests: its own host key, config and
 * authorized_keys (a fresh client key allowed to run git-shell only). Needs Debian's
 * `openssh-server` (/usr/sbin/sshd); tests skip when it is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { runChecked } from '../../../src/shared/exec.js';

export const SSHD = '/usr/sbin/sshd';
export const sshdAvailable = existsSync(SSHD);

export interface SshKeyPair {
  privateKeyPath: string;
  privateKey: string;
  publicKey: string;
}

export interface GitSshServer {
  port: number;
  user: string;
  /** `ssh://user@127.0.0.1:port<repoPath>` for an absolute repository path. */
  urlFor(repoPath: string): string;
  /** The key authorized on this server. */
  clientKey: SshKeyPair;
  stop(): Promise<void>;
}

/** Makes an unencrypted ed25519 key pair in `dir`. */
export async function makeSshKey(dir: string, name: string): Promise<SshKeyPair> {
  const privateKeyPath = join(dir, name);
  await runChecked([
    'ssh-keygen',
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    `norn-test-${name}`,
    '-f',
    privateKeyPath,
  ]);
  return {
    privateKeyPath,
    privateKey: await readFile(privateKeyPath, 'utf8'),
    publicKey: (await readFile(`${privateKeyPath}.pub`, 'utf8')).trim(),
  };
}

export async function startGitSshServer(): Promise<GitSshServer> {
  const dir = await mkdtemp(join(tmpdir(), 'norn-test-sshd-'));
  const user = userInfo().username;
  await runChecked(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  const clientKey = await makeSshKey(dir, 'client');
  // Only git may run: git-shell executes git-upload-pack/receive-pack and nothing else.
  const restrict =
    'command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty';
  await writeFile(join(dir, 'authorized_keys'), `${restrict} ${clientKey.publicKey}\n`, {
    mode: 0o600,
  });
  // sshd running as root insists on its privilege-separation directory (Debian's init script makes it).
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `AllowUsers ${user}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'StrictModes no',
    'UsePAM no',
    'AcceptEnv GIT_PROTOCOL',
    'LogLevel ERROR',
  ].join('\n');
  await writeFile(join(dir, 'sshd_config'), `${config}\n`);

  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    await waitForBanner(port, child, () => stderr);
  } catch (err) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    user,
    clientKey,
    urlFor: (repoPath) => `ssh://${user}@127.0.0.1:${port}${repoPath}`,
    stop: async () => {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Waits until sshd greets with "SSH-2.0-"; fails fast if it exits (bad config) or takes over 10 s. */
async function waitForBanner(
  port: number,
  child: ChildProcess,
  stderr: () => string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${stderr()}`);
    if (await greets(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not start on port ${port} within 10 s: ${stderr()}`);
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const finish = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('data', (d) => finish(d.toString().startsWith('SSH-')));
    sock.once('error', () => finish(false));
    sock.setTimeout(2_000, () => finish(false));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}
