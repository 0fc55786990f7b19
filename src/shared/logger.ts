/** Structured logging (pino), with secret-looking fields redacted wherever they appear. */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  // At the top of a line, and one level down (`{ auth: { token } }`).
  'token',
  'password',
  'secret',
  'authorization',
  '*.token',
  '*.password',
  '*.secret',
  '*.authorization',
  '*.apiToken',
  'req.headers.authorization',
  '*.NORN_API_TOKEN',
  '*.NORN_GIT_TOKEN',
  '*.NORN_GIT_CREDENTIALS',
  '*.NORN_GIT_SSH_KEY',
  '*.NORN_ALERT_WEBHOOK_URLS',
  '*.NORN_ALERT_SECRET',
  '*.env',
  '*.gitToken',
  '*.gitCredentials',
  '*.credentials',
  '*.gitSshKey',
  '*.registryAuth',
  '*.sshKey',
];

export type LogFormat = 'json' | 'pretty';

export function createLogger(
  level: string,
  name = 'norn',
  format: LogFormat = 'json',
  out: { write(line: string): unknown } = process.stdout,
): Logger {
  const options = { name, level, redact: { paths: REDACT, censor: '[redacted]' } };
  if (format === 'json') return out === process.stdout ? pino(options) : pino(options, out);
  return pino(options, { write: (line: string) => out.write(prettyLine(line)) });
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};
/** What pino puts on every line, and what the pretty format shows up front. */
const FRONT = ['runId', 'scope', 'pipeline', 'step', 'attempt'];
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', ...FRONT]);

/**
 * One pino JSON line as a person reads it: `12:04:05.123 INFO  [run 6f1c… app:shop deploy/build #2]
 * msg key=value …` (an error's stack on the lines after). Redaction already happened: this only
 * re-lays what pino wrote.
 */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const level = LEVELS[o.level as number] ?? String(o.level);
  const run = [
    o.runId !== undefined ? `run ${String(o.runId)}` : undefined,
    o.scope,
    o.pipeline !== undefined
      ? `${String(o.pipeline)}${o.step ? `/${String(o.step)}` : ''}`
      : o.step,
    o.attempt !== undefined ? `#${String(o.attempt)}` : undefined,
  ].filter((x) => x !== undefined && x !== null && x !== '');
  const err = o.err as { message?: string; stack?: string } | undefined;
  const rest = Object.entries(o)
    .filter(([k]) => !HIDDEN.has(k) && k !== 'err')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const head = [time, level, run.length ? `[${run.join(' ')}]` : '', String(o.msg ?? ''), ...rest]
    .filter(Boolean)
    .join(' ');
  return `${head}${err?.stack ? `\n  ${err.stack.split('\n').join('\n  ')}` : err?.message ? ` err=${err.message}` : ''}\n`;
}

export const silentLogger: Logger = pino({ level: 'silent' });
