import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { Field, Form, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';

/** Group (or user) → AWS account and role: who may have what. */
export function Assignments() {
  const session = useSession();
  const list = useLoad(() => need(api.GET('/api/v1/assignments')));
  const accounts = useLoad(() => need(api.GET('/api/v1/aws/accounts')));
  const [group, setGroup] = useState('');
  const [account, setAccount] = useState('');
  const [role, setRole] = useState('');
  const action = useAction();
  const write = can(session, 'access:write');
  return (
    <>
      <PageTitle>Assignments</PageTitle>
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Who may have which AWS role"
            rows={data.items}
            rowKey={(a) => a.id}
            columns={[
              { header: 'Who', cell: (a) => `${a.principalName ?? a.principalId} (${a.principalType})` },
              { header: 'Target', cell: (a) => a.target },
              { header: 'Created by', cell: (a) => a.createdBy },
              {
                header: 'Actions',
                cell: (a) =>
                  write ? (
                    <button
                      type="button"
                      className="secondary"
                      disabled={action.busy}
                      onClick={() =>
                        action.run(async () => {
                          await need(
                            api.DELETE('/api/v1/assignments/{id}', { params: { path: { id: a.id } } }),
                          );
                          list.reload();
                          return `Removed ${a.target} from ${a.principalName ?? a.principalId}.`;
                        })
                      }
                    >
                      Remove
                      <span className="visually-hidden">
                        {' '}
                        {a.target} from {a.principalName}
                      </span>
                    </button>
                  ) : null,
              },
            ]}
          />
        )}
      </LoadState>
      {write ? (
        <section aria-labelledby="assign">
          <h2 id="assign">Assign a role to a group</h2>
          <Form
            label="Assign a role to a group"
            onSubmit={() =>
              action.run(async () => {
                const a = await need(api.POST('/api/v1/assignments', { body: { group, account, role } }));
                list.reload();
                return `Assigned ${a.target} to ${group}.`;
              })
            }
          >
            <div className="row">
              <Field label="Group">
                {(id) => (
                  <input
                    id={id}
                    value={group}
                    required
                    onChange={(e) => setGroup(e.target.value)}
                    autoComplete="off"
                  />
                )}
              </Field>
              <Field label="AWS account">
                {(id) => (
                  <select id={id} value={account} required onChange={(e) => setAccount(e.target.value)}>
                    <option value="">Choose…</option>
                    {(accounts.data?.items ?? []).map((a) => (
                      <option key={a.id} value={a.id}>
                        {a.alias} ({a.id})
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field label="Role name">
                {(id) => (
                  <input
                    id={id}
                    value={role}
                    required
                    onChange={(e) => setRole(e.target.value)}
                    autoComplete="off"
                  />
                )}
              </Field>
            </div>
            <button type="submit" disabled={action.busy}>
              Assign
            </button>
          </Form>
        </section>
      ) : null}
    </>
  );
}
