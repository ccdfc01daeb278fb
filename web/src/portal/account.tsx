import { useSession } from '../session.js';
import { PageTitle } from '../ui.js';

/**
 * The person's account. Sessions, recovery codes and security keys are managed on Ferry's
 * server-rendered account pages (plain forms that work without JavaScript); this page links there.
 */
export function Account() {
  const session = useSession();
  const webauthn = window.isSecureContext && 'PublicKeyCredential' in window;
  return (
    <>
      <PageTitle>Account</PageTitle>
      {session.user ? (
        <dl className="facts">
          <dt>Name</dt>
          <dd>{session.user.displayName ?? session.user.userName}</dd>
          <dt>User name</dt>
          <dd>
            <code>{session.user.userName}</code>
          </dd>
          <dt>Signed in with</dt>
          <dd>{session.amr.join(' + ')}</dd>
          {session.adminRoles.length > 0 ? (
            <>
              <dt>Admin roles</dt>
              <dd>
                <ul className="plain">
                  {session.adminRoles.map((r) => (
                    <li key={r.role}>
                      {r.title}
                      {r.effect === 'step-up' ? (
                        <>
                          {' '}
                          — needs {(r.require ?? []).join(' or ')}:{' '}
                          <a
                            href={`/signin/step-up?require=${encodeURIComponent((r.require ?? ['mfa']).join(' '))}&return_to=%2Fportal%2Faccount`}
                          >
                            sign in again with it
                          </a>
                        </>
                      ) : null}
                    </li>
                  ))}
                </ul>
              </dd>
            </>
          ) : null}
        </dl>
      ) : null}
      <ul className="links">
        <li>
          <a href="/account">Sessions and recovery codes</a> — see where you are signed in, sign out elsewhere
          (what was issued under that session ends too), create new recovery codes.
        </li>
        <li>
          <a href="/signin/security-key?return_to=%2Fportal%2Faccount">Security keys and passkeys</a>
          {webauthn ? null : (
            <p className="notice" role="note">
              Passkeys cannot work on this address: browsers allow WebAuthn only on https or on localhost. Ask
              your administrator for Ferry’s https address.
            </p>
          )}
        </li>
      </ul>
    </>
  );
}
