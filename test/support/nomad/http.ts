/**
 * What every route of the fake shares: an error carrying Nomad's status code (and, for a 409,
 * the body Nomad answers), the request body as JSON, and Go's duration syntax for `?wait=`.
 */
import type { IncomingMessage } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

/** time.ParseDuration for the units a wait uses; undefined when Go would refuse it. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

export async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) throw new HttpError(400, 'Request body is empty');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `invalid character in request body: ${(err as Error).message}`);
  }
}

/** The QueryMeta fields Nomad's write responses carry. */
export const queryMeta = (index: number): Record<string, unknown> => ({
  Index: index,
  LastContact: 0,
  KnownLeader: true,
  NextToken: '',
});
