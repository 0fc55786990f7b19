/**
 * What a /ws client may send, as zod schemas: a frame is parsed and validated before anything
 * reads a field of it, so `null`, numbers, arrays, unknown types, wrong field types or NUL bytes
 * get a `ws.error` listing the problems, never an exception. The connect-time query
 * (`?app=…&lastEventId=…`) goes through the same schema.
 */
import { z } from 'zod';
import { formatPath } from '../shared/spec/problems.js';

/** The apps table's own rule for an id; anything else cannot name an app. */
const AppId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be an app name (a-z, 0-9 and -, at most 63)');

/** Event ids are bigserials; numbers past 2^53 cannot be one exactly, so they are refused. */
const EventId = z.union([
  z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  z
    .string()
    .regex(/^\d{1,15}$/, 'must be a non-negative integer')
    .transform(Number),
]);

export const SubscribeMessage = z
  .strictObject({
    type: z.literal('subscribe'),
    app: AppId.optional(),
    saga: z.uuid('must be a saga id (a UUID)').optional(),
    lastEventId: EventId.nullish(),
  })
  .refine((m) => (m.app === undefined) !== (m.saga === undefined), {
    message: 'subscribe needs exactly one of "app" or "saga"',
  });
export type SubscribeMessage = z.output<typeof SubscribeMessage>;

export interface MessageProblem {
  path: string;
  message: string;
}

export type ParsedMessage =
  | { ok: true; value: SubscribeMessage }
  | { ok: false; message: string; problems: MessageProblem[] };

const USAGE = 'send {"type":"subscribe","app"|"saga":…,"lastEventId"?}';

/** Validates one client frame. */
export function parseClientMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) {
  if (isBinary) return refused('messages must be JSON text frames, not binary');
  const text = Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refused(`messages must be JSON; ${USAGE}`);
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return refused(`a message must be a JSON object; ${USAGE}`);
  if (type !== 'subscribe') return refused(`unknown message type; ${USAGE}`);
  return validate(value);
}

/** The subscription asked for in the connect URL, if any. */
export function parseQuerySubscription(query: URLSearchParams): ParsedMessage | undefined {
  const app = query.get('app');
  const saga = query.get('saga');
  if (app === null && saga === null) return undefined;
  const lastEventId = query.get('lastEventId');
  return validate({
    type: 'subscribe',
    ...(app === null ? {} : { app }),
    ...(saga === null ? {} : { saga }),
    ...(lastEventId === null ? {} : { lastEventId }),
  });
}

function validate(value: unknown): ParsedMessage {
  const parsed = SubscribeMessage.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues.map((i) => ({
    path: formatPath(i.path),
    message: i.message,
  }));
  return {
    ok: false,
    message: `invalid subscribe message: ${problems.map((p) => (p.path ? `${p.path} ${p.message}` : p.message)).join('; ')}`,
    problems,
  };
}

function refused(message: string): ParsedMessage {
  return { ok: false, message, problems: [] };
}
