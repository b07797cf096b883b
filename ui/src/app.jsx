// The console shell: sign-in state (token in sessionStorage, checked with
// GET /api/v1/whoami), the side nav (a collapsible top menu on narrow
// screens), hash routing to the pages, the global notice area and sign-out.
import { useEffect, useState } from 'preact/hooks';
import { clearToken, getToken, onUnauthorized, whoami } from './lib/api.js';
import { useRoute } from './lib/router.js';
import { FeedbackProvider, NoticeArea, useFeedback } from './components/Feedback.jsx';
import { SignIn } from './pages/SignIn.jsx';
import { Overview } from './pages/Overview.jsx';
import { Namespaces } from './pages/Namespaces.jsx';
import { NamespaceDetail } from './pages/NamespaceDetail.jsx';
import { Upstreams } from './pages/Upstreams.jsx';
import { Catalog } from './pages/Catalog.jsx';
import { Keys } from './pages/Keys.jsx';
import { Limits } from './pages/Limits.jsx';
import { DryRun } from './pages/DryRun.jsx';
import { Revisions } from './pages/Revisions.jsx';
import { Audit } from './pages/Audit.jsx';

const NAV = [
  ['overview', 'Overview', Overview],
  ['namespaces', 'Namespaces', Namespaces],
  ['upstreams', 'Upstreams', Upstreams],
  ['catalog', 'Catalog', Catalog],
  ['keys', 'Keys & users', Keys],
  ['limits', 'Limits', Limits],
  ['dry-run', 'Dry-run', DryRun],
  ['revisions', 'Revisions', Revisions],
  ['audit', 'Audit', Audit],
];

export function App() {
  const [who, setWho] = useState(null);
  const [checking, setChecking] = useState(() => !!getToken());
  const [reason, setReason] = useState('');

  useEffect(() => {
    onUnauthorized(() => {
      setWho(null);
      setReason('Your session ended (the token was refused). Sign in again.');
    });
    const t = getToken();
    if (!t) return;
    whoami(t)
      .then(setWho)
      .catch((e) => {
        if (e.status === 401) clearToken();
        else setWho({ actor: 'admin', kind: 'token' });
      })
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p class="boot">Loading…</p>;
  if (!who) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={(w) => {
          setReason('');
          setWho(w);
        }}
      />
    );
  }
  const signOut = () => {
    clearToken();
    setWho(null);
    setReason('Signed out.');
  };
  return (
    <FeedbackProvider>
      <Shell who={who} onSignOut={signOut} />
    </FeedbackProvider>
  );
}

function Shell({ who, onSignOut }) {
  const route = useRoute();
  const [open, setOpen] = useState(false);
  const { clearNotice } = useFeedback();
  const entry = NAV.find((n) => n[0] === route.page);

  useEffect(() => {
    setOpen(false);
    document.title = `${entry ? entry[1] : 'Not found'} · Sluice console`;
    const main = document.getElementById('main');
    if (main) main.focus({ preventScroll: true });
  }, [route.page, route.args.join('/')]);
  useEffect(() => clearNotice(), [route.page]);

  let page;
  if (!entry) page = <NotFound />;
  else if (route.page === 'namespaces' && route.args[0]) page = <NamespaceDetail id={route.args[0]} />;
  else {
    const Page = entry[2];
    page = <Page args={route.args} />;
  }

  return (
    <div class="layout">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>
        Skip to content
      </a>
      <header class="side">
        <div class="brand-row">
          <span class="brand">Sluice</span>
          <button
            type="button"
            class="menu-toggle ghost"
            id="menu-toggle"
            aria-expanded={open ? 'true' : 'false'}
            aria-controls="nav"
            onClick={() => setOpen(!open)}
          >
            Menu
          </button>
        </div>
        <nav id="nav" class={open ? 'nav open' : 'nav'} aria-label="Main">
          <ul>
            {NAV.map(([key, label]) => (
              <li key={key}>
                <a id={`nav-${key}`} href={`#/${key}`} aria-current={route.page === key ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
          <div class="who">
            <span title={`kind: ${who.kind}`}>{who.actor}</span>
            <button type="button" id="sign-out" class="small" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <NoticeArea />
        {page}
      </main>
    </div>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        This page does not exist. Go to the <a href="#/overview">overview</a>.
      </p>
    </section>
  );
}
