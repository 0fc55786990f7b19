/**
 * Alerts to webhooks (NORN_ALERT_WEBHOOK_URLS): drift found or cleared, a failed release, verify or
 * check, a revert. Every endpoint gets the same JSON (a Slack-compatible `text` plus the facts),
 * signed as GitHub signs its webhooks when NORN_ALERT_SECRET is set. Endpoints are delivered to
 * concurrently, each retried with backoff on its own, so one that is down or slow never delays
 * the others; how each delivery ended is a row of `alert_deliveries` (GET /api/alerts).
 *
 * A webhook URL's path is often its credential (Slack's /services/T…/B…/…), so only its host
 * appears in logs, errors and the table; the secret appears nowhere.
 */
import { createHmac } from 'node:crypto';
import pRetry, { AbortError } from 'p-retry';
import type { Db } from './db.js';
import { redactText } from './exec.js';
import type { Logger } from './logger.js';

export const ALERT_KINDS = [
  'drift.detected',
  'drift.cleared',
  'drift.error',
  'release.failed',
  'verify.failed',
  'deploy.reverted',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface Alert {
  kind: AlertKind;
  /** What it is about: `stack:<id>` or `app:<id>`. */
  subject: string;
  /** One line, e.g. `1 to change (aws_instance.web)`. */
  summary: string;
  details?: Record<string, unknown>;
  runId?: string;
  /** Same fingerprint, same condition: lets a receiver group or deduplicate. */
  fingerprint?: string;
}

/** What every endpoint receives (the exact bytes are what the signature covers). */
export interface AlertPayload extends Alert {
  text: string;
  /** When the alert was sent, ISO 8601 (signed with the body; X-Norn-Timestamp is the same instant). */
  ts: string;
}

export interface AlertResult {
  /** The endpoint's host (never its full URL). */
  urlHost: string;
  ok: boolean;
  attempts: number;
  httpStatus: number | undefined;
  error: string | undefined;
}

export interface AlerterOptions {
  urls: readonly string[];
  secret?: string | undefined;
  db: Pick<Db, 'query'>;
  log: Logger;
  /** Retries after the first attempt (default 4: five attempts in all). */
  retries?: number;
  /** Wait before the first retry; doubles each time (default 1 s). */
  minTimeoutMs?: number;
  /** One attempt's limit: an endpoint that has not answered by then is aborted (default 10 s). */
  timeoutMs?: number;
  now?: () => number;
}

export interface Alerter {
  /** Delivers to every endpoint at once; resolves, in `urls` order, when all have ended. Never throws. */
  send(alert: Alert): Promise<AlertResult[]>;
}

export const SIGNATURE_HEADER = 'X-Norn-Signature-256';
export const TIMESTAMP_HEADER = 'X-Norn-Timestamp';

/** GitHub's X-Hub-Signature-256 scheme: `sha256=` + hex HMAC-SHA256 of the exact body. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const HEADLINE: Record<AlertKind, string> = {
  'drift.detected': ':rotating_light: drift detected',
  'drift.cleared': ':white_check_mark: drift cleared',
  'drift.error': ':warning: drift check failed',
  'release.failed': ':x: release failed',
  'verify.failed': ':x: verify failed',
  'deploy.reverted': ':leftwards_arrow_with_hook: deploy reverted',
};

/** Slack's mrkdwn treats these three as markup; everything else is shown as written. */
const slackEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One line for chat: `:rotating_light: drift detected in stack platform: 1 to change (…)`. */
export function alertText(alert: Pick<Alert, 'kind' | 'subject' | 'summary'>): string {
  const [kind, ...rest] = alert.subject.split(':');
  const where = rest.length > 0 ? `${kind} ${rest.join(':')}` : alert.subject;
  const line = `${HEADLINE[alert.kind]} in ${where}: ${alert.summary}`.replace(/\s*\n\s*/g, ' ');
  return slackEscape(line);
}

/** The host[:port] of an endpoint: the one part of its URL safe to show. */
export function urlHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
}

interface Outcome {
  ok: boolean;
  attempts: number;
  httpStatus: number | undefined;
  error: string | undefined;
}

class HttpFailure extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

const retriedStatus = (s: number) => s === 408 || s === 429 || s >= 500;

function describe(err: unknown, timeoutMs: number): string {
  const e = err as {
    name?: string;
    message?: string;
    cause?: { code?: unknown; message?: unknown };
  };
  if (e?.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (typeof e?.cause?.code === 'string')
    return `${e.message ?? 'request failed'} (${e.cause.code})`;
  if (typeof e?.cause?.message === 'string')
    return `${e.message ?? 'request failed'}: ${e.cause.message}`;
  return e?.message ?? String(err);
}

/** What of a webhook URL may be a credential: all of it as written and as parsed, its path and
 * query, its password. */
function secretParts(url: string): string[] {
  if (!URL.canParse(url)) return [url];
  const { href, pathname, search, password } = new URL(url);
  return [url, href, pathname.length > 1 || search ? pathname + search : '', password];
}

export function createAlerter(options: AlerterOptions): Alerter {
  const { urls, secret, db, log } = options;
  const retries = options.retries ?? 4;
  const minTimeoutMs = options.minTimeoutMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  // Whatever an error says, the URLs' paths and the secret are taken out of it.
  // Longest first, so a whole URL goes before the path inside it.
  const hidden = [...urls.flatMap(secretParts), ...(secret ? [secret] : [])].sort(
    (a, b) => b.length - a.length,
  );
  const hide = (text: string) => redactText(text, hidden);

  async function deliver(url: string, body: string, headers: Record<string, string>) {
    let attempts = 0;
    let httpStatus: number | undefined;
    try {
      await pRetry(
        async () => {
          attempts += 1;
          httpStatus = undefined;
          const res = await fetch(url, {
            method: 'POST',
            headers,
            body,
            redirect: 'manual',
            signal: AbortSignal.timeout(timeoutMs),
          });
          httpStatus = res.status;
          await res.body?.cancel().catch(() => {});
          if (res.ok) return;
          const failure = new HttpFailure(res.status);
          throw retriedStatus(res.status) ? failure : new AbortError(failure);
        },
        { retries, minTimeout: minTimeoutMs, factor: 2, randomize: true },
      );
      return { ok: true, attempts, httpStatus, error: undefined } satisfies Outcome;
    } catch (err) {
      const reason = err instanceof HttpFailure ? err.message : describe(err, timeoutMs);
      const error = hide(`${reason}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`);
      return { ok: false, attempts, httpStatus, error } satisfies Outcome;
    }
  }

  async function record(
    alert: Alert,
    host: string,
    payload: AlertPayload,
    startedAt: number,
    o: Outcome,
  ) {
    await db
      .query(
        `INSERT INTO alert_deliveries
           (kind, subject, url_host, status, attempts, http_status, error, payload, created_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9 / 1000.0), to_timestamp($10 / 1000.0))`,
        [
          alert.kind,
          alert.subject,
          host,
          o.ok ? 'ok' : 'failed',
          o.attempts,
          o.httpStatus ?? null,
          o.error ?? null,
          payload,
          startedAt,
          now(),
        ],
      )
      .catch((err: Error) =>
        log.warn({ kind: alert.kind, host, err: hide(err.message) }, 'alert delivery not recorded'),
      );
  }

  return {
    async send(alert) {
      const at = now();
      const payload: AlertPayload = {
        text: alertText(alert),
        kind: alert.kind,
        subject: alert.subject,
        summary: alert.summary,
        ...(alert.details ? { details: alert.details } : {}),
        ...(alert.runId ? { runId: alert.runId } : {}),
        ...(alert.fingerprint ? { fingerprint: alert.fingerprint } : {}),
        ts: new Date(at).toISOString(),
      };
      const body = JSON.stringify(payload);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'norn-alerts',
        [TIMESTAMP_HEADER]: String(Math.floor(at / 1000)),
        ...(secret ? { [SIGNATURE_HEADER]: signBody(secret, body) } : {}),
      };
      return Promise.all(
        urls.map(async (url): Promise<AlertResult> => {
          const host = urlHost(url);
          const outcome = await deliver(url, body, headers);
          const facts = {
            kind: alert.kind,
            subject: alert.subject,
            host,
            attempts: outcome.attempts,
          };
          if (outcome.ok) log.info(facts, 'alert delivered');
          else log.warn({ ...facts, error: outcome.error }, 'alert delivery failed');
          await record(alert, host, payload, at, outcome);
          return { urlHost: host, ...outcome };
        }),
      );
    },
  };
}

export interface AlertDelivery {
  id: number;
  kind: string;
  subject: string;
  urlHost: string;
  status: 'ok' | 'failed';
  attempts: number;
  httpStatus: number | null;
  error: string | null;
  payload: AlertPayload;
  createdAt: string;
  finishedAt: string;
}

/** The most recent deliveries, newest first (GET /api/alerts). */
export async function recentDeliveries(
  db: Pick<Db, 'query'>,
  limit = 100,
): Promise<AlertDelivery[]> {
  const { rows } = await db.query<AlertDelivery>(
    `SELECT id, kind, subject, url_host AS "urlHost", status, attempts, http_status AS "httpStatus",
            error, payload, created_at AS "createdAt", finished_at AS "finishedAt"
     FROM alert_deliveries ORDER BY created_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    ...r,
    createdAt: new Date(r.createdAt).toISOString(),
    finishedAt: new Date(r.finishedAt).toISOString(),
  }));
}
