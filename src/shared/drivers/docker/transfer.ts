/**
 * Image push and pull through the engine, with the registry credentials handed to the engine in
 * the X-Registry-Auth header (never on a command line, never in output). The engine reports
 * transfer failures inside the stream, not as HTTP errors, so both are read from there.
 */
import type Docker from 'dockerode';
import { NornError } from '../../errors.js';
import { redactText } from '../../exec.js';
import { engineError, engineMessage, engineStatus, throwIfAborted } from './engine-errors.js';
import { splitImageRef } from './registry.js';
import { LineCollector, readProgress, type ProgressMessage } from './streams.js';

export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

export interface TransferOptions {
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

const AUTH_FAILURE =
  /unauthori[sz]ed|authentication required|denied|no basic auth credentials|401/i;

/** The engine wants an X-Registry-Auth header even for open registries; `{}` means anonymous. */
function authconfig(auth: RegistryAuth | undefined): Docker.AuthConfig {
  return (auth ?? {}) as Docker.AuthConfig;
}

function secretsOf(auth: RegistryAuth | undefined, extra: readonly string[]): string[] {
  return auth ? [auth.password, ...extra] : [...extra];
}

/** Reads a push/pull stream: lines to `onLine` (byte-progress ticks left out), failure and aux kept. */
async function follow(
  stream: NodeJS.ReadableStream,
  what: string,
  lines: LineCollector,
  signal: AbortSignal | undefined,
): Promise<{ failure?: string; digest?: string }> {
  const seen: { failure?: string; digest?: string } = {};
  const onMessage = (m: ProgressMessage) => {
    if (m.error || m.errorDetail) seen.failure = m.errorDetail?.message ?? m.error;
    if (m.aux?.Digest) seen.digest = m.aux.Digest;
    if (m.status && !m.progressDetail?.current)
      lines.line(m.id ? `${m.id}: ${m.status}` : m.status);
    // Older engines only print the digest: "abc: digest: sha256:… size: 528".
    seen.digest ??= /digest: (sha256:[0-9a-f]{64})/.exec(m.status ?? '')?.[1];
  };
  await readProgress(stream, what, onMessage, signal);
  return seen;
}

const MISSING = /does not exist locally|no such image|manifest unknown|not found/i;

function transferFailed(
  what: string,
  host: string,
  reason: string,
  auth: RegistryAuth | undefined,
  tail: string[],
): NornError {
  if (MISSING.test(reason))
    return new NornError('NOT_FOUND', `${what}: ${reason}`, { details: { tail } });
  if (AUTH_FAILURE.test(reason)) {
    const who = auth
      ? `the credentials of user "${auth.username}"`
      : 'anonymous access (no registry credentials configured)';
    return new NornError('UNAUTHORIZED', `${what}: registry ${host} refused ${who}: ${reason}`, {
      details: { tail },
    });
  }
  return new NornError('UNAVAILABLE', `${what} failed: ${reason}`, {
    retryable: true,
    details: { tail },
  });
}

export async function pushImage(
  docker: Docker,
  ref: string,
  auth: RegistryAuth | undefined,
  o: TransferOptions & { registryHost: string },
): Promise<{ digest: string }> {
  const what = `docker push of ${ref}`;
  const secrets = secretsOf(auth, []);
  throwIfAborted(o.signal, what);
  const { name, tag } = splitImageRef(ref);
  const lines = new LineCollector(secrets, o.onLine);
  let seen: { failure?: string; digest?: string };
  try {
    const stream = await docker
      .getImage(name)
      .push({ tag, authconfig: authconfig(auth), abortSignal: o.signal });
    seen = await follow(stream, what, lines, o.signal);
  } catch (err) {
    throw engineError(err, what, secrets, o.signal);
  }
  lines.flush();
  if (seen.failure !== undefined)
    throw transferFailed(what, o.registryHost, redactText(seen.failure, secrets), auth, lines.tail);
  if (!seen.digest)
    throw new NornError('INTERNAL', `${what}: the engine reported no digest`, {
      details: { tail: lines.tail },
    });
  return { digest: seen.digest };
}

/** Pulls `ref` when the engine does not have it yet; credentials only go to norn's own registry. */
export async function ensureImage(
  docker: Docker,
  ref: string,
  auth: RegistryAuth | undefined,
  o: TransferOptions,
): Promise<string> {
  const what = `docker pull of ${ref}`;
  const secrets = secretsOf(auth, []);
  try {
    const present = await docker.getImage(ref).inspect();
    return present.Id;
  } catch (err) {
    if (engineStatus(err) !== 404)
      throw engineError(err, `inspecting image ${ref}`, secrets, o.signal);
  }
  throwIfAborted(o.signal, what);
  const forUs = auth && ref.startsWith(`${auth.serveraddress}/`) ? auth : undefined;
  const lines = new LineCollector(secrets, o.onLine);
  const host = splitImageRef(ref).name.split('/')[0] ?? ref;
  let seen: { failure?: string };
  try {
    const stream = await docker.pull(ref, { authconfig: authconfig(forUs), abortSignal: o.signal });
    seen = await follow(stream, what, lines, o.signal);
  } catch (err) {
    // The engine answers a failed pull with an HTTP error (500, 404) carrying the registry's words.
    if (engineStatus(err) === undefined || o.signal?.aborted)
      throw engineError(err, what, secrets, o.signal);
    throw transferFailed(what, host, redactText(engineMessage(err), secrets), forUs, lines.tail);
  }
  if (seen.failure !== undefined)
    throw transferFailed(what, host, redactText(seen.failure, secrets), forUs, lines.tail);
  const pulled = await docker
    .getImage(ref)
    .inspect()
    .catch((err: unknown) => {
      throw engineError(err, what, secrets, o.signal);
    });
  return pulled.Id;
}
