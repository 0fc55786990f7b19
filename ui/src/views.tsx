/** The dashboard's views: login, apps, an app (live), stacks. */
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import type { EventEnvelope } from '../../src/shared/events.js';
import { api, ApiError, type AppSummary } from './api.js';
import { ActionButton, Ago, Badge, ErrorText, Section } from './components.js';
import { navigate, useAction, useLoad } from './hooks.js';
import { LiveFeed, type LiveStatus } from './live.js';
import { RunPanel, useProgress } from './run.js';

export function Login({ onLoggedIn }: { onLoggedIn: () => void }) {
  const [token, setToken] = useState('');
  const { busy, error, run } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      await api.login(token);
      setToken(''); // the cookie stands for it now; the token is not kept anywhere
      onLoggedIn();
    });
  };
  return (
    <form className="card login" onSubmit={submit} aria-label="Log in">
      <h1>norn</h1>
      <label>
        API token
        <input
          type="password"
          name="token"
          autoComplete="current-password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          required
        />
      </label>
      <button type="submit" disabled={busy || !token}>
        {busy ? 'Logging in…' : 'Log in'}
      </button>
      <ErrorText error={error} />
    </form>
  );
}

/** One row of the apps view, from the list's own status of the app (no request per app). */
function AppRow({ app }: { app: AppSummary }) {
  const { forge, latestRun: latest, holder, queued } = app.status;
  return (
    <tr data-app={app.id}>
      <td>
        <a
          href={`/apps/${encodeURIComponent(app.id)}`}
          onClick={(e) => {
            e.preventDefault();
            navigate(`/apps/${encodeURIComponent(app.id)}`);
          }}
        >
          {app.id}
        </a>
      </td>
      <td>{app.target ?? 'docker'}</td>
      <td>
        <Badge status={forge} />
      </td>
      <td>
        {latest ? (
          <>
            {latest.pipeline} <Badge status={latest.status} /> <Ago ts={latest.createdAt} />
          </>
        ) : (
          <span className="muted">no runs</span>
        )}
      </td>
      <td>
        {holder ? (
          <>
            {holder.pipeline} <code>{holder.runId.slice(0, 8)}</code> on{' '}
            <code>{holder.holder}</code>
          </>
        ) : (
          <span className="muted">free</span>
        )}
      </td>
      <td data-queue>{queued}</td>
    </tr>
  );
}

export function AppsView() {
  const apps = useLoad(() => api.apps(), [], 2_000);
  return (
    <Section title="Apps">
      <ErrorText error={apps.error} />
      <table>
        <thead>
          <tr>
            <th>app</th>
            <th>target</th>
            <th>forge</th>
            <th>latest run</th>
            <th>lease holder</th>
            <th>queued</th>
          </tr>
        </thead>
        <tbody>
          {apps.data?.apps.map((a) => (
            <AppRow key={a.id} app={a} />
          ))}
        </tbody>
      </table>
      {apps.data?.apps.length === 0 && (
        <p className="muted">No apps yet: register one with `norn apps add infraspec.yaml`.</p>
      )}
    </Section>
  );
}

export function AppView({ appId, runId }: { appId: string; runId?: string }) {
  const [status, setStatus] = useState<LiveStatus>('connecting');
  const [events, setEvents] = useState<EventEnvelope[]>([]);
  const detail = useLoad(() => api.app(appId), [appId]);
  const runs = useLoad(() => api.runs(appId, 20), [appId]);
  const releases = useLoad(() => api.releases(appId), [appId]);
  const snapshots = useLoad(() => api.snapshots(appId), [appId]);
  const drift = useLoad(() => api.drift(appId), [appId]);
  const current = runId ?? runs.data?.runs[0]?.id;
  const run = useLoad(() => (current ? api.run(current) : Promise.resolve(undefined)), [current]);
  const progress = useProgress(current, events);
  const refreshAll = useRef<() => void>(() => {});
  refreshAll.current = () => {
    detail.reload();
    runs.reload();
    run.reload();
    releases.reload();
    snapshots.reload();
    drift.reload();
  };
  // Events come in bursts (a step's end and the next one's start): one refresh per burst.
  const pending = useRef<number | undefined>(undefined);
  const refreshSoon = useCallback(() => {
    if (pending.current !== undefined) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      refreshAll.current();
    }, 100);
  }, []);
  useEffect(() => {
    const feed = new LiveFeed(appId, {
      onEvent: (e) => {
        setEvents((list) => [...list.slice(-500), e]);
        refreshSoon();
      },
      onStatus: (s) => {
        setStatus(s);
        window.dispatchEvent(new CustomEvent('norn-live', { detail: s }));
      },
      onResync: refreshSoon,
    });
    feed.start();
    return () => {
      feed.stop();
      window.dispatchEvent(new CustomEvent('norn-live', { detail: 'live' }));
    };
  }, [appId, refreshSoon]);

  const [ref, setRef] = useState('');
  const a = detail.data;
  const forge = a?.forge;
  return (
    <div className="app-view" data-live={status}>
      <Section title={`App ${appId}`}>
        <ErrorText error={detail.error} />
        {a && (
          <p>
            target <strong>{String(a.app.spec.target ?? 'docker')}</strong> · forge{' '}
            <Badge status={forge?.state} /> · lease{' '}
            {a.lease.holder ? (
              <>
                held by {a.lease.holder.pipeline} <code>{a.lease.holder.runId.slice(0, 8)}</code>
              </>
            ) : (
              'free'
            )}{' '}
            · {a.lease.waiting.length} queued
          </p>
        )}
        <div className="row actions">
          <input
            aria-label="Git ref"
            placeholder="ref (branch, tag, commit)"
            value={ref}
            onChange={(e) => setRef(e.target.value)}
          />
          <ActionButton
            label="Deploy"
            action={async () => {
              const accepted = await api.deploy(appId, ref.trim() || undefined);
              navigate(`/apps/${encodeURIComponent(appId)}/runs/${accepted.runId}`);
            }}
            onDone={refreshSoon}
          />
          <ActionButton
            label="Check drift"
            action={() => api.driftCheck(appId)}
            onDone={refreshSoon}
          />
          <ActionButton label="Forge" action={() => api.forge(appId, false)} onDone={refreshSoon} />
          <ActionButton
            label="Re-forge"
            danger
            confirm={`Force a re-forge of ${appId}? Its resources are re-created.`}
            action={() => api.forge(appId, true)}
            onDone={refreshSoon}
          />
          <ActionButton
            label="Tear down"
            danger
            confirm={`Tear down ${appId}? Its forged resources are removed.`}
            action={() => api.teardown(appId)}
            onDone={refreshSoon}
          />
        </div>
      </Section>
      {run.data ? (
        <RunPanel detail={run.data} progress={progress} onChange={refreshSoon} />
      ) : (
        <Section title="Run">
          <ErrorText error={run.error} />
          <p className="muted">No run yet.</p>
        </Section>
      )}
      <Section title="Run history">
        <table>
          <thead>
            <tr>
              <th>run</th>
              <th>pipeline</th>
              <th>status</th>
              <th>requested</th>
              <th>by</th>
            </tr>
          </thead>
          <tbody>
            {runs.data?.runs.map((r) => (
              <tr key={r.id} className={r.id === current ? 'selected' : undefined}>
                <td>
                  <a
                    href={`/apps/${encodeURIComponent(appId)}/runs/${r.id}`}
                    onClick={(e) => {
                      e.preventDefault();
                      navigate(`/apps/${encodeURIComponent(appId)}/runs/${r.id}`);
                    }}
                  >
                    <code>{r.id.slice(0, 8)}</code>
                  </a>
                </td>
                <td>{r.pipeline}</td>
                <td>
                  <Badge status={r.status} />
                </td>
                <td>
                  <Ago ts={r.createdAt} />
                </td>
                <td>{r.requestedBy ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Releases">
        <table>
          <thead>
            <tr>
              <th>status</th>
              <th>image</th>
              <th>commit</th>
              <th>migrations</th>
              <th>snapshot</th>
              <th>released</th>
            </tr>
          </thead>
          <tbody>
            {releases.data?.releases.map((r) => (
              <tr key={r.id}>
                <td>
                  <Badge status={r.status} />
                </td>
                <td>
                  <code>{r.imageRef}</code>
                </td>
                <td>
                  <code>{r.commitSha.slice(0, 12)}</code>
                </td>
                <td>{r.migrationsApplied.join(', ') || <span className="muted">none</span>}</td>
                <td>{r.snapshotTs ?? <span className="muted">none</span>}</td>
                <td>
                  <Ago ts={r.activatedAt ?? r.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Snapshots">
        <ErrorText error={snapshots.error} />
        <ul>
          {snapshots.data?.snapshots.map((s) => (
            <li key={s.ts}>
              <code>{s.ts}</code> of {s.database} ({Math.round(s.sizeBytes / 1024)} KiB){' '}
              <ActionButton
                label="Restore"
                danger
                confirm={`Restore ${s.database} of ${appId} to ${s.ts}? The database's current data is replaced.`}
                action={() => api.restore(appId, s.ts)}
                onDone={refreshSoon}
              />
            </li>
          ))}
          {snapshots.data?.snapshots.length === 0 && <li className="muted">none</li>}
        </ul>
      </Section>
      <Section title="Forge">
        {forge && (
          <>
            <p>
              <Badge status={forge.state} />
            </p>
            <pre>{JSON.stringify(forge.resources, null, 2)}</pre>
          </>
        )}
      </Section>
      <Section title="Drift">
        {drift.data && (
          <p>
            <Badge status={drift.data.drift.status} />
            {'checkedAt' in drift.data.drift && (
              <>
                {' '}
                checked <Ago ts={drift.data.drift.checkedAt} />
                {drift.data.drift.fingerprint && (
                  <>
                    {' '}
                    · fingerprint <code>{drift.data.drift.fingerprint.slice(0, 12)}</code>
                  </>
                )}
              </>
            )}
          </p>
        )}
      </Section>
    </div>
  );
}

export function StacksView() {
  const stacks = useLoad(() => api.stacks(), [], 5_000);
  return (
    <Section title="Stacks">
      <ErrorText error={stacks.error} />
      {stacks.data?.stacks.map((s) => (
        <StackCard key={s.id} id={s.id} />
      ))}
      {stacks.data?.stacks.length === 0 && <p className="muted">No stacks registered.</p>}
    </Section>
  );
}

function StackCard({ id }: { id: string }) {
  const runs = useLoad(() => api.stackRuns(id), [id], 5_000);
  const plans = useLoad(() => api.stackPlans(id), [id], 5_000);
  const drift = useLoad(() => api.stackDrift(id), [id], 5_000);
  const history = useLoad(
    async () => (await api.events(id, 200)).events.filter((e) => e.type.startsWith('drift.')),
    [id],
    5_000,
  );
  const latest = (kind: string) => plans.data?.plans.find((p) => p.kind === kind);
  const release = runs.data?.runs.find((r) => r.pipeline === 'release');
  const lastPlan = plans.data?.plans[0];
  return (
    <div className="stack" data-stack={id}>
      <h3>{id}</h3>
      <p>
        review {latest('review') ? <Ago ts={latest('review')!.createdAt} /> : '—'} · release{' '}
        <Badge status={release?.status} /> · drift <Badge status={drift.data?.drift.status} />{' '}
        <ActionButton label="Check drift now" action={() => api.stackDriftCheck(id)} />
      </p>
      {lastPlan && (
        <p>
          last plan ({lastPlan.kind}): <code>{JSON.stringify(lastPlan.summary)}</code>
        </p>
      )}
      <h4>Drift history</h4>
      <ul>
        {history.data?.map((e) => (
          <li key={e.id}>
            <Ago ts={e.ts} /> {e.type}{' '}
            {typeof e.payload.fingerprint === 'string' && (
              <code>{e.payload.fingerprint.slice(0, 12)}</code>
            )}
          </li>
        ))}
        {history.data?.length === 0 && <li className="muted">no drift recorded</li>}
      </ul>
    </div>
  );
}

export const isUnauthorized = (err: unknown) => err instanceof ApiError && err.status === 401;
