/**
 * Checks every request passes before a route sees it:
 * - the body limit (NORN_MAX_BODY_BYTES): a declared Content-Length over it is refused unread; a
 *   chunked body is counted as it arrives and refused once it passes the limit, so no more than
 *   the limit is ever held;
 * - no NUL bytes: PostgreSQL cannot store U+0000 in text or jsonb, so one in a path parameter, a
 *   query parameter or any string (key or value) of a JSON or YAML body, at any depth, is a 400
 *   naming where it is, instead of a 500 from the database.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePath } from 'hono/route';
import { NornError } from '../shared/errors.js';
import { readYaml } from '../shared/spec/read-yaml.js';
import { formatPath } from '../shared/spec/problems.js';

const NUL = '\u0000';

export function limitBody(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new NornError(
        'PAYLOAD_TOO_LARGE',
        `the request body is larger than ${maxBytes} bytes (NORN_MAX_BODY_BYTES)`,
      );
    },
  });
}

interface Problem {
  path: string;
  message: string;
}

const MESSAGE = 'must not contain a NUL character (\\u0000)';

export function refuseNul(): MiddlewareHandler {
  return async (c, next) => {
    const problems = [...targetProblems(c), ...(await bodyProblems(c))];
    if (problems.length > 0) {
      throw new NornError(
        'BAD_REQUEST',
        `the request holds NUL characters: ${problems.map((p) => p.path).join(', ')}`,
        { details: { problems } },
      );
    }
    await next();
  };
}

/** Path segments (named after the route's parameters where one matched) and query parameters. */
function targetProblems(c: Context): Problem[] {
  const url = new URL(c.req.url);
  const pattern = routePath(c, -1).split('/');
  const problems: Problem[] = [];
  url.pathname.split('/').forEach((segment, i) => {
    if (!decode(segment).includes(NUL)) return;
    const name = pattern[i]?.startsWith(':') ? pattern[i]!.slice(1).replace(/[{?].*$/, '') : '';
    problems.push({ path: name ? `params.${name}` : `path[${i}]`, message: MESSAGE });
  });
  for (const [key, value] of url.searchParams) {
    if (key.includes(NUL) || value.includes(NUL))
      problems.push({ path: formatPath(['query', key]), message: MESSAGE });
  }
  return problems;
}

const decode = (segment: string) => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // not valid percent-encoding: the route decides
  }
};

/** Every string of the body (read as JSON or YAML, as the routes do), keys included. */
async function bodyProblems(c: Context): Promise<Problem[]> {
  if (!c.req.raw.body) return [];
  const text = await c.req.text(); // Hono keeps it: the route reads the same text again
  if (!text.includes(NUL) && !/\\(u0000|U00000000|x00|0)/.test(text)) return [];
  const read = readYaml(text);
  const found = read.ok ? nulPaths(read.value, ['body']) : [];
  if (found.length === 0 && text.includes(NUL)) return [{ path: 'body', message: MESSAGE }];
  return found.map((path) => ({ path, message: MESSAGE }));
}

function nulPaths(value: unknown, path: PropertyKey[], seen = new Set<object>()): string[] {
  if (typeof value === 'string') return value.includes(NUL) ? [formatPath(path)] : [];
  if (typeof value !== 'object' || value === null || seen.has(value)) return [];
  seen.add(value); // YAML aliases may share (or loop back to) a node
  const out: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const at = [...path, Array.isArray(value) ? Number(key) : key]; // formatPath escapes NUL
    if (key.includes(NUL)) out.push(formatPath(at));
    out.push(...nulPaths(child, at, seen));
  }
  return out;
}
