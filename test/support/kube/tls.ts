/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1/localhost, made with
 * the openssl CLI (node:crypto cannot issue X.509 certificates). The CA is what a kubeconfig's
 * certificate-authority-data carries, so clients verify the fake server as they would a cluster;
 * it also issues a client certificate, for kubeconfigs that authenticate with one.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ServerTls {
  caCert: string;
  cert: string;
  key: string;
  /** A client certificate the CA issued (CN=norn, O=system:masters), as a user would hold it. */
  client: { cert: string; key: string };
  /** A client certificate of a CA the server does not know (refused). */
  stranger: { cert: string; key: string };
}

export function makeServerTls(): ServerTls {
  const dir = mkdtempSync(join(tmpdir(), 'kube-fake-tls-'));
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  try {
    run(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2'].concat([
        '-keyout',
        'ca.key',
        '-out',
        'ca.crt',
        '-subj',
        '/CN=kube-fake-ca',
      ]),
    );
    run(
      [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'server.key',
        '-out',
        'server.csr',
      ].concat(['-subj', '/CN=kube-apiserver']),
    );
    writeFileSync(
      join(dir, 'ext.cnf'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    );
    run(
      ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key'].concat([
        '-CAcreateserial',
        '-out',
        'server.crt',
        '-days',
        '2',
        '-extfile',
        'ext.cnf',
      ]),
    );
    // A client certificate from the cluster's CA, and one self-signed (no CA the server trusts).
    writeFileSync(join(dir, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
    run(
      [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'client.key',
        '-out',
        'client.csr',
      ].concat(['-subj', '/O=system:masters/CN=norn']),
    );
    run(
      ['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key'].concat([
        '-CAcreateserial',
        '-out',
        'client.crt',
        '-days',
        '2',
        '-extfile',
        'client.cnf',
      ]),
    );
    run(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2'].concat([
        '-keyout',
        'stranger.key',
        '-out',
        'stranger.crt',
        '-subj',
        '/CN=norn',
      ]),
    );
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    return {
      client: { cert: read('client.crt'), key: read('client.key') },
      stranger: { cert: read('stranger.crt'), key: read('stranger.key') },
      caCert: readFileSync(join(dir, 'ca.crt'), 'utf8'),
      cert: readFileSync(join(dir, 'server.crt'), 'utf8'),
      key: readFileSync(join(dir, 'server.key'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
