/** Pieces every view uses: buttons that confirm and disable, status badges, times, errors. */
import { useState, type ReactNode } from 'react';
import { formatDuration } from '../../src/cli/render.js';
import { useAction } from './hooks.js';

export function Badge({ status }: { status: string | null | undefined }) {
  const s = status ?? 'none';
  return <span className={`badge badge-${s}`}>{s}</span>;
}

export function Ago({ ts }: { ts: string | null | undefined }) {
  if (!ts) return <span className="muted">—</span>;
  const ms = Date.now() - Date.parse(ts);
  return (
    <time dateTime={ts} title={new Date(ts).toLocaleString()}>
      {ms < 0 ? 'just now' : `${formatDuration(ms)} ago`}
    </time>
  );
}

export function ErrorText({ error }: { error: string | undefined }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="card" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/**
 * A button for an api action: disabled while its request is in flight, its error shown beside
 * it, and, when `confirm` is given, asking first in a dialog of the page.
 */
export function ActionButton(props: {
  label: string;
  action: () => Promise<unknown>;
  confirm?: string;
  danger?: boolean;
  disabled?: boolean;
  onDone?: () => void;
}) {
  const { busy, error, run } = useAction();
  const [asking, setAsking] = useState(false);
  const go = () =>
    run(async () => {
      await props.action();
      props.onDone?.();
    });
  return (
    <span className="action">
      <button
        type="button"
        className={props.danger ? 'danger' : undefined}
        disabled={busy || props.disabled}
        onClick={() => (props.confirm ? setAsking(true) : void go())}
      >
        {busy ? `${props.label}…` : props.label}
      </button>
      {asking && (
        <div className="overlay">
          <div
            className="dialog"
            role="dialog"
            aria-modal="true"
            aria-label={`Confirm ${props.label}`}
          >
            <p>{props.confirm}</p>
            <div className="row">
              <button type="button" onClick={() => setAsking(false)}>
                Keep it
              </button>
              <button
                type="button"
                className="danger"
                onClick={() => {
                  setAsking(false);
                  void go();
                }}
              >
                Yes, {props.label.toLowerCase()}
              </button>
            </div>
          </div>
        </div>
      )}
      <ErrorText error={error} />
    </span>
  );
}
