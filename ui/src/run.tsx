/**
 * The live run panel: a run's steps with their status, index/total, duration, the progress line
 * while `healthy` waits, the failing step's error; the log of the step that runs (or failed),
 * following live; cancel and resume; and, for a queued run, why it waits.
 */
import { useEffect, useState } from 'react';
import { formatDuration, progressText, type ProgressPayload } from '../../src/cli/render.js';
import { api, type RunDetail } from './api.js';
import { ActionButton, Ago, Badge, ErrorText, Section } from './components.js';
import { useLoad } from './hooks.js';

const ACTIVE = new Set(['queued', 'running', 'cancelling']);

export function RunPanel(props: {
  detail: RunDetail;
  progress: Record<string, ProgressPayload>;
  onChange: () => void;
}) {
  const { run, steps } = props.detail;
  const running = steps.find((s) => s.status === 'running');
  const failed = steps.find((s) => s.status === 'failed');
  const [logStep, setLogStep] = useState<string>();
  const shown = logStep ?? running?.name ?? failed?.name ?? steps[steps.length - 1]?.name;
  return (
    <Section title="Run">
      <div className="run-head">
        <strong>{run.pipeline}</strong> <Badge status={run.status} />{' '}
        <code className="muted">{run.id}</code> <span className="muted">requested</span>{' '}
        <Ago ts={run.createdAt} />
        {run.params.ref ? <span className="muted"> · ref {String(run.params.ref)}</span> : null}
      </div>
      <div className="row">
        {ACTIVE.has(run.status) && (
          <ActionButton
            label="Cancel"
            danger
            confirm={`Cancel ${run.pipeline} run ${run.id.slice(0, 8)}? A deploy that began puts the app back as it was.`}
            action={() => api.cancel(run.id)}
            onDone={props.onChange}
          />
        )}
        {(run.status === 'failed' || run.status === 'cancelled') && (
          <ActionButton label="Resume" action={() => api.resume(run.id)} onDone={props.onChange} />
        )}
      </div>
      {run.status === 'queued' && <WhyWaiting scope={run.scope} runId={run.id} />}
      <ol className="steps" aria-label="Steps">
        {steps.map((s) => {
          const p = props.progress[s.name];
          return (
            <li key={s.name} className={`step step-${s.status}`} data-step={s.name}>
              <button type="button" className="link" onClick={() => setLogStep(s.name)}>
                <span className="step-index">
                  [{s.index + 1}/{steps.length}]
                </span>{' '}
                <span className="step-name">{s.name}</span>
              </button>{' '}
              <Badge status={s.status} />
              {s.durationMs !== null && (
                <span className="muted"> {formatDuration(s.durationMs)}</span>
              )}
              {s.attempts > 1 && <span className="muted"> (attempt {s.attempts})</span>}
              {s.status === 'running' && p && (
                <span className="progress" data-progress={s.name}>
                  {' '}
                  {progressText(p)}
                </span>
              )}
              {s.error && <div className="step-error">{s.error}</div>}
            </li>
          );
        })}
      </ol>
      {run.error && (
        <p className="error" role="alert" data-run-error>
          {run.failedStep ? `${run.failedStep}: ` : ''}
          {run.error}
        </p>
      )}
      {run.cancelReason && <p className="muted">cancelled: {run.cancelReason}</p>}
      {shown && <StepLog runId={run.id} step={shown} live={ACTIVE.has(run.status)} />}
    </Section>
  );
}

/** What a step wrote, re-read every second while its run is active. */
function StepLog(props: { runId: string; step: string; live: boolean }) {
  const log = useLoad(
    () => api.stepLog(props.runId, props.step),
    [props.runId, props.step],
    props.live ? 1_000 : 0,
  );
  return (
    <div className="log">
      <h3>
        Log of <code>{props.step}</code>
        {props.live && <span className="muted"> (following)</span>}
      </h3>
      <ErrorText error={log.error} />
      <pre aria-label="Step log">{log.data?.lines.join('\n') || '(nothing written)'}</pre>
    </div>
  );
}

/** For a queued run: its scope, who holds it and since when, and where the run stands. */
export function WhyWaiting(props: { scope: string; runId: string }) {
  const view = useLoad(() => api.scope(props.scope), [props.scope], 1_000);
  const v = view.data;
  const position = v ? v.waiting.findIndex((w) => w.runId === props.runId) + 1 : 0;
  return (
    <div className="why" aria-label="Why is this waiting?">
      <h3>Why is this waiting?</h3>
      <ErrorText error={view.error} />
      {v && (
        <ul>
          <li>
            scope <code>{v.scope}</code>
          </li>
          {v.holder ? (
            <li data-holder>
              held by {v.holder.pipeline} run <code>{v.holder.runId.slice(0, 8)}</code> (
              {v.holder.status}) on worker <code>{v.holder.holder}</code> since{' '}
              <Ago ts={v.holder.acquiredAt} />
            </li>
          ) : (
            <li>no run holds it now: this run starts next</li>
          )}
          <li data-position>
            position {position > 0 ? position : '?'} of {v.waiting.length} waiting
          </li>
        </ul>
      )}
    </div>
  );
}

/** The progress events of a run, by step: the newest for each. */
export function useProgress(
  runId: string | undefined,
  events: { type: string; runId: string; payload: Record<string, unknown> }[],
) {
  const [progress, setProgress] = useState<Record<string, ProgressPayload>>({});
  useEffect(() => setProgress({}), [runId]);
  useEffect(() => {
    const latest: Record<string, ProgressPayload> = {};
    for (const e of events)
      if (e.runId === runId && e.type.endsWith('.progress'))
        latest[String(e.payload.step)] = e.payload as unknown as ProgressPayload;
    if (Object.keys(latest).length) setProgress((p) => ({ ...p, ...latest }));
  }, [events, runId]);
  return progress;
}
