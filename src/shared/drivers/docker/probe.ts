/** HTTP health probe of a workload: one GET with a deadline; a failure is an answer, not an error. */
import { NornError } from '../../errors.js';

export interface ProbeResult {
  ok: boolean;
  status?: number;
  error?: string;
}

/**
 * GETs `url` and reports whether it answered 2xx/3xx within `timeoutMs`. Redirects are not
 * followed (a 3xx already shows the app is serving). Only an abort of `signal` throws (CANCELLED),
 * because the caller is being stopped, not the workload found unhealthy.
 */
export async function httpProbe(
  url: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const cancelled = () =>
    new NornError(
      'CANCELLED',
      `probe of ${url} stopped: ${typeof signal?.reason === 'string' ? signal.reason : 'aborted'}`,
    );
  if (signal?.aborted) throw cancelled();
  try {
    const res = await fetch(url, {
      redirect: 'manual',
      headers: { 'user-agent': 'norn-probe' },
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
    });
    await res.body?.cancel().catch(() => {}); // only the status matters; free the socket
    return { ok: res.status >= 200 && res.status < 400, status: res.status };
  } catch (err) {
    if (signal?.aborted) throw cancelled();
    if (deadline.aborted) return { ok: false, error: `no answer within ${timeoutMs} ms` };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, error: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}
