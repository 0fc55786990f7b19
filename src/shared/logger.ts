/** Structured logging (pino), with secret-looking fields redacted wherever they appear. */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
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

export function createLogger(level: string, name = 'norn'): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
