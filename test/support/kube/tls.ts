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
  /** A self-signed certificate `<name>.crt` with its key. */
  const selfSigned = (name: string, subject: string) =>
    run(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-keyout',
        `${name}.key`,
      ].concat(['-out', `${name}.crt`, '-subj', subject]),
    );
  /** A key and a certificate `<name>.crt` the CA signed, with the extensions `ext`. */
  const issued = (name: string, subject: string, ext: string) => {
    run(
      [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      ].concat(['-subj', subject]),
    );
    writeFileSync(join(dir, `${name}.cnf`), ext);
    run(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
      ].concat(['-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.cnf`]),
    );
  };
  try {
    selfSigned('ca', '/CN=kube-fake-ca');
    issued(
      'server',
      '/CN=kube-apiserver',
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    );
    // A client certificate from the cluster's CA, and one self-signed (no CA the server trusts).
    issued('client', '/O=system:masters/CN=norn', 'extendedKeyUsage=clientAuth\n');
    selfSigned('stranger', '/CN=norn');
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
