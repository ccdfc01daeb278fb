import { type ReactNode, StrictMode, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { WhoCanReach } from './admin/access.js';
import { Assignments } from './admin/assignments.js';
import { Audit } from './admin/audit.js';
import { GroupDetail, Groups } from './admin/groups.js';
import {
  AwsAccounts,
  Eligibilities,
  OidcClients,
  Policies,
  ProxyApps,
  Reviews,
  SamlProviders,
  Scim,
  SigningKeys,
  SshLogins,
} from './admin/lists.js';
import { PimAdmin } from './admin/pim.js';
import { Users } from './admin/users.js';
import { Account } from './portal/account.js';
import { Approvals } from './portal/approvals.js';
import { Elevate } from './portal/elevate.js';
import { MyAccess } from './portal/my-access.js';
import { type ConsoleSession, can, loadSession, SessionContext } from './session.js';
import { Link, useLocation } from './ui.js';
import './styles.css';

interface Page {
  path: string;
  label: string;
  /** the admin permission needed to see it in the menu (the server checks every call regardless) */
  permission?: string;
  render: () => ReactNode;
}

const PORTAL: Page[] = [
  { path: '/', label: 'My access', render: () => <MyAccess /> },
  { path: '/portal/request', label: 'Request access', render: () => <Elevate /> },
  { path: '/portal/approvals', label: 'Approvals', render: () => <Approvals /> },
  { path: '/portal/account', label: 'Account', render: () => <Account /> },
];

const ADMIN: Page[] = [
  { path: '/admin/users', label: 'Users', permission: 'users:read', render: () => <Users /> },
  { path: '/admin/groups', label: 'Groups', permission: 'groups:read', render: () => <Groups /> },
  {
    path: '/admin/access',
    label: 'Who can reach what',
    permission: 'access:read',
    render: () => <WhoCanReach />,
  },
  {
    path: '/admin/assignments',
    label: 'Assignments',
    permission: 'access:read',
    render: () => <Assignments />,
  },
  { path: '/admin/pim', label: 'Approvals queue', permission: 'pim:read', render: () => <PimAdmin /> },
  {
    path: '/admin/eligibilities',
    label: 'Eligible roles',
    permission: 'pim:read',
    render: () => <Eligibilities />,
  },
  { path: '/admin/aws', label: 'AWS accounts', permission: 'access:read', render: () => <AwsAccounts /> },
  { path: '/admin/ssh', label: 'SSH logins', permission: 'access:read', render: () => <SshLogins /> },
  { path: '/admin/saml', label: 'SAML apps', permission: 'apps:read', render: () => <SamlProviders /> },
  { path: '/admin/oidc', label: 'OpenID clients', permission: 'apps:read', render: () => <OidcClients /> },
  { path: '/admin/proxy', label: 'Proxied apps', permission: 'apps:read', render: () => <ProxyApps /> },
  { path: '/admin/scim', label: 'SCIM', permission: 'provisioning:read', render: () => <Scim /> },
  {
    path: '/admin/policies',
    label: 'Conditional access',
    permission: 'policies:read',
    render: () => <Policies />,
  },
  { path: '/admin/reviews', label: 'Access reviews', permission: 'reviews:read', render: () => <Reviews /> },
  { path: '/admin/keys', label: 'Signing keys', permission: 'keys:read', render: () => <SigningKeys /> },
  { path: '/admin/audit', label: 'Audit', permission: 'audit:read', render: () => <Audit /> },
];

function NotAllowed() {
  return (
    <>
      <h1>Not available</h1>
      <p>Your admin roles do not include this page. Ask a Ferry Administrator if you need it.</p>
    </>
  );
}

function route(path: string, session: ConsoleSession): ReactNode {
  const group = path.match(/^\/admin\/groups\/(.+)$/);
  if (group)
    return can(session, 'groups:read') ? (
      <GroupDetail refName={decodeURIComponent(group[1]!)} />
    ) : (
      <NotAllowed />
    );
  const portal = PORTAL.find((p) => p.path === path);
  if (portal) return portal.render();
  const admin = ADMIN.find((p) => p.path === path);
  if (admin) return admin.permission && !can(session, admin.permission) ? <NotAllowed /> : admin.render();
  if (path === '/admin') {
    const first = ADMIN.find((p) => !p.permission || can(session, p.permission));
    return first ? first.render() : <NotAllowed />;
  }
  return (
    <>
      <h1>Not found</h1>
      <p>
        There is no such page. <Link href="/">Go to your access</Link>.
      </p>
    </>
  );
}

function Shell({ session }: { session: ConsoleSession }) {
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);
  const adminPages = ADMIN.filter((p) => !p.permission || can(session, p.permission));
  const inAdmin = path.startsWith('/admin');
  const [menuOpen, setMenuOpen] = useState(false);
  // After an in-app navigation, move focus to the new page's heading (as a page load would).
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs when the path changes
  useEffect(() => {
    setMenuOpen(false);
    main.current?.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
  }, [path]);
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Ferry</span>
        <button
          type="button"
          className="menu-toggle secondary"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <span className="who">{session.user?.displayName ?? session.user?.userName ?? ''}</span>
        {/* Sign-out is the account page's form (its own double-submit CSRF token). */}
        <a href="/account">Account and sign out</a>
      </header>
      <div className="layout">
        <nav id="nav" aria-label="Console" className={menuOpen ? 'open' : ''}>
          <ul>
            {PORTAL.map((p) => (
              <li key={p.path}>
                <Link href={p.path}>{p.label}</Link>
              </li>
            ))}
          </ul>
          {adminPages.length > 0 ? (
            <>
              <h2 className="nav-heading">Administration</h2>
              <ul>
                {adminPages.map((p) => (
                  <li key={p.path}>
                    <Link href={p.path}>{p.label}</Link>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </nav>
        <main id="main" ref={main} className={inAdmin ? 'admin' : ''}>
          {route(path, session)}
        </main>
      </div>
    </>
  );
}

function App() {
  const [session, setSession] = useState<ConsoleSession | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    loadSession().then(setSession, (err: Error) => setError(err.message));
  }, []);
  if (error)
    return (
      <main>
        <h1>Ferry is not answering</h1>
        <p role="alert">{error}</p>
      </main>
    );
  if (!session) return <p className="muted">Loading…</p>;
  return (
    <SessionContext.Provider value={session}>
      <Shell session={session} />
    </SessionContext.Provider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
