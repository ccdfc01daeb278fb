import { api, need } from '../api/client.js';
import { useSession } from '../session.js';
import { LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';

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
      <Sessions />
      <ul className="links">
        <li>
          <a href="/account">Recovery codes and sign-out</a> — create new recovery codes (shown once), sign
          out of this browser.
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

/** Where the person is signed in; signing a session out ends what was issued under it too. */
function Sessions() {
  const list = useLoad(() => need(api.GET('/api/v1/me/sessions')));
  const action = useAction();
  return (
    <section aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Sessions</h2>
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Where you are signed in"
            rows={data.items}
            rowKey={(s) => s.id}
            columns={[
              { header: 'Started', cell: (s) => new Date(s.createdAt).toLocaleString() },
              { header: 'From', cell: (s) => `${s.ip ?? ''} ${(s.userAgent ?? '').slice(0, 60)}` },
              { header: 'Last seen', cell: (s) => new Date(s.lastSeenAt).toLocaleString() },
              {
                header: 'Action',
                cell: (s) =>
                  s.current ? (
                    'this browser'
                  ) : (
                    <button
                      type="button"
                      className="secondary"
                      disabled={action.busy}
                      onClick={() =>
                        action.run(async () => {
                          await need(
                            api.POST('/api/v1/me/sessions/{id}/revoke', { params: { path: { id: s.id } } }),
                          );
                          list.reload();
                          return 'Signed out that session.';
                        })
                      }
                    >
                      Sign out<span className="visually-hidden"> the session started {s.createdAt}</span>
                    </button>
                  ),
              },
            ]}
          />
        )}
      </LoadState>
    </section>
  );
}
