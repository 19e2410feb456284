/**
 * The Fleet PKI ops console (docs/console.md): sign in with an API key, then the pages its role may read.
 * Hash routing (#/certificates): the server serves one page, and nothing about the session is ever in a URL.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { can, type Session, signIn, signOut, storedKey } from './api';
import { ErrorLine, h } from './ui';
import { Overview } from './views/overview';
import { Authorities } from './views/authorities';
import { Certificates } from './views/certificates';
import { Claims } from './views/claims';
import { Rotations } from './views/rotations';
import { Audit } from './views/audit';
import './style.css';

interface Page {
  path: string;
  title: string;
  permission: string;
  view: (props: { session: Session }) => unknown;
}

const PAGES: Page[] = [
  { path: 'overview', title: 'Overview', permission: 'inventory:read', view: Overview },
  { path: 'authorities', title: 'CA hierarchy', permission: 'inventory:read', view: Authorities },
  { path: 'certificates', title: 'Certificates', permission: 'inventory:read', view: Certificates },
  { path: 'claims', title: 'Claims', permission: 'inventory:read', view: Claims },
  { path: 'rotations', title: 'Rotations', permission: 'inventory:read', view: Rotations },
  { path: 'audit', title: 'Audit trail', permission: 'audit:read', view: Audit },
];

function currentPath(): string {
  return window.location.hash.replace(/^#\/?/, '') || 'overview';
}

function SignIn(props: { onSession: (session: Session) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      props.onSession(await signIn(key.trim()));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return h(
    'form',
    { class: 'signin', onSubmit: submit, autocomplete: 'off' },
    h('h1', null, 'Fleet PKI console'),
    h('label', null, 'API key', h('input', { type: 'password', name: 'apiKey', 'data-testid': 'api-key', value: key, autocomplete: 'off', spellcheck: false, onInput: (e: Event) => setKey((e.target as HTMLInputElement).value) })),
    h('p', { class: 'muted small' }, 'Kept in this tab only (sessionStorage): closing the tab signs you out.'),
    h(ErrorLine, { error }),
    h('button', { type: 'submit', 'data-testid': 'sign-in', disabled: busy || !key.trim() }, 'Sign in'),
  );
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(Boolean(storedKey()));
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const onHash = () => setPath(currentPath());
    window.addEventListener('hashchange', onHash);
    const key = storedKey();
    if (key) signIn(key).then(setSession, () => signOut()).finally(() => setRestoring(false));
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  if (restoring) return h('p', { class: 'muted' }, 'Signing in…');
  if (!session) return h(SignIn, { onSession: setSession });
  const pages = PAGES.filter((p) => can(session, p.permission));
  const page = pages.find((p) => p.path === path) ?? pages[0];
  return h(
    'div',
    { class: 'shell' },
    h(
      'header',
      null,
      h('span', { class: 'brand' }, 'Fleet PKI'),
      h('nav', null, ...pages.map((p) => h('a', { href: `#/${p.path}`, class: p === page ? 'active' : '', 'data-testid': `nav-${p.path}` }, p.title))),
      h('span', { class: 'who', 'data-testid': 'whoami' }, `${session.me.name} · ${session.me.role}`),
      h('button', { type: 'button', 'data-testid': 'sign-out', onClick: () => (signOut(), setSession(null)) }, 'Sign out'),
    ),
    h('main', null, page ? h(page.view as never, { session, key: page.path }) : h('p', null, 'This key may read nothing here.')),
  );
}

render(h(App, null), document.getElementById('app')!);
