/**
 * One-off containers (an app's `build.test`): run a command in the image to its end, stream its
 * output, and remove the container afterwards whatever happened: exit, timeout, abort or error.
 */
import type Docker from 'dockerode';
import { NornError } from '../../errors.js';
import { cancelled, engineError, ignoreStatus, throwIfAborted } from './engine-errors.js';
import { assertOwner, envList } from './containers.js';
import { LineCollector, readLogFrames } from './streams.js';

export interface RunToCompletionOptions {
  image: string;
  cmd: string[];
  env?: Record<string, string>;
  /** Container name; a leftover container of that name (from a killed earlier try) is replaced. */
  name: string;
  labels?: Record<string, string>;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  /** Kill the container after this long and fail with TIMEOUT. */
  timeoutMs?: number;
  /** Values to scrub from the output (secrets passed in `env`). */
  redact?: string[];
}

/** How long to wait for the last log lines after the container has exited. */
const LOG_DRAIN_MS = 3_000;

export async function runToCompletion(
  docker: Docker,
  o: RunToCompletionOptions,
  secrets: readonly string[],
): Promise<{ exitCode: number; tail: string[] }> {
  const what = `one-off container ${o.name}`;
  const scrub = [...secrets, ...(o.redact ?? [])];
  const lines = new LineCollector(scrub, o.onLine);
  throwIfAborted(o.signal, what);
  try {
    // A leftover of a killed earlier try is replaced; a container of another app is never touched.
    const leftover = await ignoreStatus(docker.getContainer(o.name).inspect());
    if (leftover) {
      assertOwner(leftover, o);
      await ignoreStatus(docker.getContainer(leftover.Id).remove({ force: true }), [404, 409]);
    }
  } catch (err) {
    throw engineError(err, what, scrub, o.signal);
  }

  let container: Docker.Container | undefined;
  try {
    container = await docker.createContainer({
      name: o.name,
      Image: o.image,
      Cmd: o.cmd,
      Env: envList(o.env),
      Labels: { ...o.labels, 'norn.one-off': '1' },
      HostConfig: { NetworkMode: 'host' },
    });
    await container.start();
    // Logs with follow replay from the start, so nothing printed before this call is lost.
    const logs = readLogFrames(
      await container.logs({ follow: true, stdout: true, stderr: true }),
      lines,
    );
    const exitCode = await waitForExit(container, what, o, lines);
    await Promise.race([logs, new Promise((resolve) => setTimeout(resolve, LOG_DRAIN_MS).unref())]);
    lines.flush();
    return { exitCode, tail: [...lines.tail] };
  } catch (err) {
    throw engineError(err, what, scrub, o.signal);
  } finally {
    // Also after abort/timeout: force removal kills the process if it is still running.
    if (container)
      await ignoreStatus(container.remove({ force: true }), [404, 409]).catch(() => {});
  }
}

/** The container's exit code, or TIMEOUT / CANCELLED, whichever comes first. */
function waitForExit(
  container: Docker.Container,
  what: string,
  o: RunToCompletionOptions,
  lines: LineCollector,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = () => {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      settle();
      reject(cancelled(what, o.signal));
    };
    if (o.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        settle();
        lines.flush();
        const details = { timeoutMs: o.timeoutMs, tail: [...lines.tail] };
        reject(
          new NornError('TIMEOUT', `${what} did not finish within ${o.timeoutMs} ms`, { details }),
        );
      }, o.timeoutMs);
    }
    // An abort that came while the container was being created and started is one too.
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    container.wait().then(
      (result: { StatusCode: number }) => {
        settle();
        resolve(result.StatusCode);
      },
      (err: unknown) => {
        settle();
        reject(err);
      },
    );
  });
}
