import { useState } from 'react';
import { api, need } from '../api/client.js';
import type { paths } from '../api/schema.js';
import { useSession } from '../session.js';
import { Field, Form, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import { createPasskey, passkeyError, passkeyObstacle } from './webauthn.js';

type Security = paths['/api/v1/me/security']['get']['responses']['200']['content']['application/json'];

/**
 * The person's account: who they are, how they sign in (password, authenticator app, passkeys,
 * recovery codes) and where they are signed in. Every change goes through /api/v1/me/…; the server
 * asks for a step-up when this session has not used the second factor the person has, or signed in
 * longer ago than signin.accountChangeMaxAge.
 */
export function Account() {
  const session = useSession();
  const security = useLoad(() => need(api.GET('/api/v1/me/security')));
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
      <LoadState loaded={security}>
        {(s) => (
          <>
            {s.stepUpRequired ? (
              <p className="notice" role="note" id="step-up-note">
                To change how you sign in, first{' '}
                <a href={s.stepUpUrl}>
                  {s.totp.enrolled || s.passkeys.length > 0
                    ? 'verify it is you with your second factor'
                    : 'sign in again'}
                </a>
                ; you come back here.
              </p>
            ) : null}
            {s.mfaRequired && !s.totp.enrolled && s.passkeys.length === 0 ? (
              <p className="notice" role="note">
                Your organisation requires a second factor: add an authenticator app or a passkey.
              </p>
            ) : null}
            <AuthenticatorApp status={s} reload={security.reload} />
            <Passkeys status={s} reload={security.reload} />
            <RecoveryCodes status={s} reload={security.reload} />
            {s.hasPassword ? <Password /> : null}
          </>
        )}
      </LoadState>
      <Sessions />
      <ul className="links">
        <li>
          <a href="/account">Sign out of this browser</a>
        </li>
      </ul>
    </>
  );
}

/** A person's only second factor while the policy requires one cannot go (the server refuses too). */
const isLast = (s: Security) => s.mfaRequired && (s.totp.enrolled ? 1 : 0) + s.passkeys.length <= 1;

function AuthenticatorApp({ status, reload }: { status: Security; reload: () => void }) {
  const action = useAction();
  const [enrollment, setEnrollment] = useState<{ secret: string; uri: string; qr: string } | null>(null);
  const [code, setCode] = useState('');
  return (
    <section aria-labelledby="totp-heading">
      <h2 id="totp-heading">Authenticator app</h2>
      <Message message={action.message} />
      {status.totp.enrolled ? (
        <div className="card-head">
          <p id="totp-state">An authenticator app gives your verification codes.</p>
          <button
            type="button"
            className="secondary"
            disabled={action.busy}
            onClick={() =>
              action.run(async () => {
                await need(api.DELETE('/api/v1/me/totp'));
                reload();
                return 'Authenticator app removed.';
              })
            }
          >
            Remove authenticator app
          </button>
        </div>
      ) : enrollment ? (
        <div className="enroll">
          <p>
            Scan this code with an authenticator app (Microsoft Authenticator, Google Authenticator,
            1Password, …), or type the key into it, then enter the code it shows.
          </p>
          <img
            className="qr"
            id="totp-qr"
            src={enrollment.qr}
            width={200}
            height={200}
            alt="QR code to add Ferry to an authenticator app"
          />
          <p>
            Key: <code id="totp-secret">{enrollment.secret}</code>
          </p>
          <p className="muted">
            Or open this link on the device with your app: <a href={enrollment.uri}>{enrollment.uri}</a>
          </p>
          <Form
            label="Confirm the authenticator app"
            onSubmit={() =>
              action.run(async () => {
                await need(api.POST('/api/v1/me/totp/confirm', { body: { code: code.trim() } }));
                setEnrollment(null);
                setCode('');
                reload();
                return 'Authenticator app added: your next sign-in asks for its code.';
              })
            }
          >
            <Field label="Verification code">
              {(id) => (
                <input
                  id={id}
                  type="text"
                  inputMode="numeric"
                  autoComplete="one-time-code"
                  pattern="[0-9]{6}"
                  maxLength={6}
                  required
                  value={code}
                  onChange={(e) => setCode(e.target.value)}
                />
              )}
            </Field>
            <button type="submit" disabled={action.busy}>
              Verify and add
            </button>
          </Form>
        </div>
      ) : (
        <div className="card-head">
          <p id="totp-state">No authenticator app.</p>
          <button
            type="button"
            disabled={action.busy}
            onClick={() =>
              action.run(async () => {
                setEnrollment(await need(api.POST('/api/v1/me/totp', { body: {} })));
                return undefined;
              })
            }
          >
            Add an authenticator app
          </button>
        </div>
      )}
      {status.totp.enrolled && isLast(status) ? (
        <p className="muted">
          It is your only second factor, which your organisation requires: add a passkey first to remove it.
        </p>
      ) : null}
    </section>
  );
}

function Passkeys({ status, reload }: { status: Security; reload: () => void }) {
  const action = useAction();
  const [name, setName] = useState('Passkey');
  const obstacle = passkeyObstacle(status.webauthn);
  return (
    <section aria-labelledby="passkeys-heading">
      <h2 id="passkeys-heading">Passkeys and security keys</h2>
      <Message message={action.message} />
      <Table
        caption="Your passkeys and security keys"
        rows={status.passkeys}
        rowKey={(k) => k.id}
        columns={[
          { header: 'Name', cell: (k) => k.name },
          { header: 'Added', cell: (k) => new Date(k.createdAt).toLocaleString() },
          {
            header: 'Last used',
            cell: (k) => (k.lastUsedAt ? new Date(k.lastUsedAt).toLocaleString() : '—'),
          },
          {
            header: 'Action',
            cell: (k) => (
              <button
                type="button"
                className="secondary"
                disabled={action.busy}
                onClick={() =>
                  action.run(async () => {
                    await need(api.DELETE('/api/v1/me/passkeys/{id}', { params: { path: { id: k.id } } }));
                    reload();
                    return `Removed ${k.name}.`;
                  })
                }
              >
                Remove<span className="visually-hidden"> {k.name}</span>
              </button>
            ),
          },
        ]}
      />
      {obstacle ? (
        <p className="notice" role="note" id="passkey-obstacle">
          {obstacle}
        </p>
      ) : (
        <Form
          label="Add a passkey"
          onSubmit={() =>
            action.run(async () => {
              const options = await need(api.POST('/api/v1/me/passkeys/options', { body: {} }));
              let response: Record<string, unknown>;
              try {
                response = await createPasskey(options as Parameters<typeof createPasskey>[0]);
              } catch (err) {
                throw new Error(passkeyError(err));
              }
              const added = await need(
                api.POST('/api/v1/me/passkeys', { body: { name: name.trim(), response } }),
              );
              reload();
              return `Added ${added.name}: you can sign in with it.`;
            })
          }
        >
          <Field
            label="Name for the new passkey"
            hint="So you can tell your devices apart, e.g. “Work laptop”."
          >
            {(id, hint) => (
              <input
                id={id}
                type="text"
                maxLength={64}
                required
                aria-describedby={hint}
                value={name}
                onChange={(e) => setName(e.target.value)}
              />
            )}
          </Field>
          <button type="submit" disabled={action.busy}>
            Add a passkey
          </button>
        </Form>
      )}
    </section>
  );
}

function RecoveryCodes({ status, reload }: { status: Security; reload: () => void }) {
  const action = useAction();
  const [codes, setCodes] = useState<string[] | null>(null);
  return (
    <section aria-labelledby="recovery-heading">
      <h2 id="recovery-heading">Recovery codes</h2>
      <p className="muted">
        Single-use codes for when your authenticator is lost.{' '}
        <span id="recovery-remaining">{status.recoveryCodesRemaining}</span> left.
      </p>
      <Message message={action.message} />
      {codes ? (
        <>
          <p>
            Keep these somewhere safe: each works once, in place of a verification code. They are shown only
            now; your earlier codes no longer work.
          </p>
          <ul id="recovery-codes" className="plain">
            {codes.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <button
        type="button"
        className="secondary"
        disabled={action.busy}
        onClick={() =>
          action.run(async () => {
            setCodes((await need(api.POST('/api/v1/me/recovery-codes', { body: {} }))).codes);
            reload();
            return undefined;
          })
        }
      >
        Create new recovery codes
      </button>
    </section>
  );
}

function Password() {
  const action = useAction();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [done, setDone] = useState(false);
  if (done)
    return (
      <section aria-labelledby="password-heading">
        <h2 id="password-heading">Password</h2>
        <p className="notice" role="status">
          Password changed. Every session has ended, this one too:{' '}
          <a href="/signin?return_to=%2Fportal%2Faccount">sign in again with your new password</a>.
        </p>
      </section>
    );
  return (
    <section aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <Message message={action.message} />
      <Form
        label="Change your password"
        onSubmit={() =>
          action.run(async () => {
            await need(
              api.POST('/api/v1/me/password', { body: { currentPassword: current, newPassword: next } }),
            );
            setCurrent('');
            setNext('');
            setDone(true);
            return undefined;
          })
        }
      >
        <Field label="Current password">
          {(id) => (
            <input
              id={id}
              type="password"
              autoComplete="current-password"
              required
              value={current}
              onChange={(e) => setCurrent(e.target.value)}
            />
          )}
        </Field>
        <Field label="New password" hint="At least 8 characters; a long passphrase is best.">
          {(id, hint) => (
            <input
              id={id}
              type="password"
              autoComplete="new-password"
              required
              aria-describedby={hint}
              value={next}
              onChange={(e) => setNext(e.target.value)}
            />
          )}
        </Field>
        <button type="submit" disabled={action.busy}>
          Change password
        </button>
      </Form>
    </section>
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
