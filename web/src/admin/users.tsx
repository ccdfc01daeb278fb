import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { Field, Form, Link, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';

/** Directory users: search, create, disable, reset MFA, and a way to their effective access. */
export function Users() {
  const session = useSession();
  const [q, setQ] = useState('');
  const users = useLoad(
    () => need(api.GET('/api/v1/users', { params: { query: { q: q || undefined, limit: 100 } } })),
    [q],
  );
  const action = useAction();
  const write = can(session, 'users:write');
  const mfa = can(session, 'mfa:reset');
  return (
    <>
      <PageTitle>Users</PageTitle>
      <Field label="Search users">
        {(id) => (
          <input id={id} type="search" value={q} onChange={(e) => setQ(e.target.value)} autoComplete="off" />
        )}
      </Field>
      <Message message={action.message} />
      <LoadState loaded={users}>
        {(data) => (
          <Table
            caption={`${data.total} user${data.total === 1 ? '' : 's'}`}
            rows={data.items}
            rowKey={(u) => u.id}
            columns={[
              { header: 'User name', cell: (u) => <code>{u.userName}</code> },
              { header: 'Name', cell: (u) => u.displayName ?? '' },
              { header: 'Status', cell: (u) => (u.active ? 'active' : 'disabled') },
              {
                header: 'Actions',
                cell: (u) => (
                  <div className="actions">
                    <Link href={`/admin/access?user=${encodeURIComponent(u.userName)}`}>
                      Access<span className="visually-hidden"> of {u.userName}</span>
                    </Link>
                    {write ? (
                      <button
                        type="button"
                        className="secondary"
                        disabled={action.busy}
                        onClick={() =>
                          action.run(async () => {
                            await need(
                              api.PATCH('/api/v1/users/{ref}', {
                                params: { path: { ref: u.id } },
                                body: { active: !u.active },
                              }),
                            );
                            users.reload();
                            return `${u.userName} ${u.active ? 'disabled' : 'enabled'}.`;
                          })
                        }
                      >
                        {u.active ? 'Disable' : 'Enable'}
                        <span className="visually-hidden"> {u.userName}</span>
                      </button>
                    ) : null}
                    {mfa ? (
                      <button
                        type="button"
                        className="secondary"
                        disabled={action.busy}
                        onClick={() =>
                          action.run(async () => {
                            const r = await need(
                              api.DELETE('/api/v1/users/{ref}/mfa', { params: { path: { ref: u.id } } }),
                            );
                            return `Removed ${r.removed} MFA method${r.removed === 1 ? '' : 's'} of ${u.userName}; they enrol again at their next sign-in.`;
                          })
                        }
                      >
                        Reset MFA<span className="visually-hidden"> of {u.userName}</span>
                      </button>
                    ) : null}
                  </div>
                ),
              },
            ]}
          />
        )}
      </LoadState>
      {write ? <CreateUser onDone={users.reload} /> : null}
    </>
  );
}

function CreateUser({ onDone }: { onDone: () => void }) {
  const [userName, setUserName] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const action = useAction();
  return (
    <section aria-labelledby="create-user">
      <h2 id="create-user">Create a user</h2>
      <Form
        label="Create a user"
        onSubmit={() =>
          action.run(async () => {
            const u = await need(
              api.POST('/api/v1/users', {
                body: {
                  userName,
                  ...(displayName ? { displayName } : {}),
                  ...(password ? { password } : {}),
                },
              }),
            );
            setUserName('');
            setDisplayName('');
            setPassword('');
            onDone();
            return `Created ${u.userName}.`;
          })
        }
      >
        <div className="row">
          <Field label="User name (UPN)">
            {(id) => (
              <input
                id={id}
                value={userName}
                required
                onChange={(e) => setUserName(e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
          <Field label="Display name">
            {(id) => (
              <input
                id={id}
                value={displayName}
                onChange={(e) => setDisplayName(e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
          <Field label="Initial password" hint="Optional: people who sign in through Entra ID need none.">
            {(id, hint) => (
              <input
                id={id}
                type="password"
                value={password}
                aria-describedby={hint}
                onChange={(e) => setPassword(e.target.value)}
                autoComplete="new-password"
              />
            )}
          </Field>
        </div>
        <button type="submit" disabled={action.busy}>
          Create user
        </button>
        <Message message={action.message} />
      </Form>
    </section>
  );
}
