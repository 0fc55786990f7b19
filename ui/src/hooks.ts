/** Small React helpers: the router, polling, and actions that show their errors. */
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { ApiError } from './api.js';

// ---- router: the History API; views are plain paths the api's SPA fallback answers ---------

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(path: string): void {
  if (path === location.pathname) return;
  history.pushState(null, '', path);
  listeners.forEach((l) => l());
}

export function usePath(): string {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => location.pathname,
  );
}

// ---- data ---------------------------------------------------------------------------------

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/**
 * `load()` now, again every `everyMs` (0: never) and when the tab is shown again; `reload()`
 * on demand. A failed load keeps the last data and says why.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs = 0): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const latest = useRef(0);
  const reload = useCallback(() => {
    const n = ++latest.current;
    load().then(
      (d) => {
        if (n !== latest.current) return;
        setData(d);
        setError(undefined);
      },
      (err: unknown) => {
        if (n === latest.current) setError(err instanceof Error ? err.message : String(err));
      },
    );
  }, deps);
  useEffect(() => {
    reload();
    const onVisible = () => document.visibilityState === 'visible' && reload();
    document.addEventListener('visibilitychange', onVisible);
    const timer = everyMs > 0 ? window.setInterval(reload, everyMs) : undefined;
    return () => {
      document.removeEventListener('visibilitychange', onVisible);
      window.clearInterval(timer);
    };
  }, [reload, everyMs]);
  return { data, error, reload };
}

/** An action: `busy` while its request is in flight (buttons disable), `error` when it failed. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const run = useCallback(async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await work();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run };
}
