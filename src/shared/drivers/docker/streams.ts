/**
 * Readers for the engine's two streaming formats: the newline-delimited JSON messages of build,
 * push and pull, and the multiplexed stdout/stderr frames of container logs. Both turn the bytes
 * into text lines for `onLine` callbacks and keep a tail for error messages.
 */
import { redactText } from '../../exec.js';
import { cancelled } from './engine-errors.js';

export const TAIL_LINES = 40;

/** One message of a build/push/pull stream (only the fields norn reads). */
export interface ProgressMessage {
  stream?: string;
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string; Tag?: string };
}

/** Splits text into lines across chunk boundaries, scrubbing secrets and keeping a tail. */
export class LineCollector {
  readonly tail: string[] = [];
  /** Unfinished last line per source (stdout and stderr must not splice into one line). */
  private readonly partial = new Map<number, string>();

  constructor(
    private readonly secrets: readonly string[],
    private readonly onLine?: (line: string) => void,
  ) {}

  push(text: string, source = 0): void {
    const lines = ((this.partial.get(source) ?? '') + text).split('\n');
    this.partial.set(source, lines.pop() ?? '');
    for (const line of lines) this.emit(line);
  }

  /** Emits a whole line at once (status messages are already line-sized). */
  line(text: string): void {
    this.flush();
    this.emit(text);
  }

  flush(): void {
    for (const rest of this.partial.values()) if (rest) this.emit(rest);
    this.partial.clear();
  }

  private emit(raw: string): void {
    const clean = redactText(raw.replace(/\r$/, ''), this.secrets);
    this.tail.push(clean);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    this.onLine?.(clean);
  }
}

/**
 * Reads a JSON-lines progress stream to its end, handing every message to `onMessage`. Resolves when
 * the engine closes the stream; rejects CANCELLED when `signal` fires (dockerode destroys the
 * response, which makes the engine stop the build or transfer).
 */
export function readProgress(
  stream: NodeJS.ReadableStream,
  what: string,
  onMessage: (m: ProgressMessage) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const handle = (text: string) => {
      if (!text.trim()) return;
      try {
        onMessage(JSON.parse(text) as ProgressMessage);
      } catch {
        onMessage({ stream: `${text}\n` }); // not JSON: keep the text rather than lose it
      }
    };
    stream.on('data', (chunk: Buffer | string) => {
      const parts = (buffered + chunk.toString()).split('\n');
      buffered = parts.pop() ?? '';
      for (const part of parts) handle(part);
    });
    stream.on('end', () => {
      handle(buffered);
      resolve();
    });
    stream.on('error', (err: Error) => reject(signal?.aborted ? cancelled(what, signal) : err));
    // A stream destroyed by the abort may end with 'close' and no 'error'.
    stream.on('close', () => {
      if (signal?.aborted) reject(cancelled(what, signal));
    });
  });
}

/**
 * Demultiplexes a container log stream (8-byte frame headers: stream type, 3 zero bytes, length)
 * into one collector. Without a TTY the engine always sends frames; stdout and stderr are
 * interleaved as they arrive, which is what an operator watching a test run wants.
 */
export function readLogFrames(stream: NodeJS.ReadableStream, lines: LineCollector): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      pending = demuxFrames(Buffer.concat([pending, chunk]), lines);
    });
    stream.on('end', () => {
      lines.flush();
      resolve();
    });
    stream.on('close', () => {
      lines.flush();
      resolve();
    });
    stream.on('error', reject);
  });
}

/** Hands every whole frame of `bytes` to `lines`; returns the unfinished rest. */
export function demuxFrames(bytes: Buffer, lines: LineCollector): Buffer {
  let pending = bytes;
  while (pending.length >= 8) {
    const size = pending.readUInt32BE(4);
    if (pending.length < 8 + size) break;
    lines.push(pending.subarray(8, 8 + size).toString('utf8'), pending[0]);
    pending = pending.subarray(8 + size);
  }
  return pending;
}
