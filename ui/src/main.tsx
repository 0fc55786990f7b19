/** The dashboard: logs in, then routes between the apps, an app (live) and the stacks. */
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, setUnauthorizedHandler } from './api.js';
import { navigate, usePath } from './hooks.js';
import type { LiveStatus } from './live.js';
import { AppsView, AppView, Login, StacksView } from './views.js';
import './styles.css';

type Auth = 'checking' | 'in' | 'out';

function Shell() {
  const path = usePath();
  const [auth, setAuth] = useState<Auth>('checking');
  const [live, setLive] = useState<LiveStatus>('live');
  useEffect(() => {
    setUnauthorizedHandler(() => setAuth('out'));
    api.session().then(
      () => setAuth('in'),
      () => setAuth('out'),
    );
    const onLive = (e: Event) => setLive((e as CustomEvent<LiveStatus>).detail);
    window.addEventListener('norn-live', onLive);
    return () => window.removeEventListener('norn-live', onLive);
  }, []);
  if (auth === 'checking') return <p className="muted">…</p>;
  if (auth === 'out') return <Login onLoggedIn={() => setAuth('in')} />;
  const app = /^\/apps\/([^/]+)(?:\/runs\/([^/]+))?\/?$/.exec(path);
  const link = (to: string, label: string) => (
    <a
      href={to}
      className={path === to ? 'current' : undefined}
      onClick={(e) => {
        e.preventDefault();
        navigate(to);
      }}
    >
      {label}
    </a>
  );
  return (
    <>
      <header>
        <strong className="brand">norn</strong>
        <nav>
          {link('/', 'Apps')}
          {link('/stacks', 'Stacks')}
          <a href="/admin/queues">Queues</a>
        </nav>
        <button type="button" onClick={() => void api.logout().finally(() => setAuth('out'))}>
          Log out
        </button>
      </header>
      {live === 'offline' && (
        <div className="banner" role="status">
          offline, reconnecting…
        </div>
      )}
      <main>
        {app ? (
          <AppView
            key={app[1]}
            appId={decodeURIComponent(app[1]!)}
            {...(app[2] ? { runId: decodeURIComponent(app[2]) } : {})}
          />
        ) : path === '/stacks' ? (
          <StacksView />
        ) : (
          <AppsView />
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Shell />
  </StrictMode>,
);
