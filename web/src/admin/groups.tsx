import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { Field, Form, Link, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';

export function Groups() {
  const session = useSession();
  const [q, setQ] = useState('');
  const groups = useLoad(
    () => need(api.GET('/api/v1/groups', { params: { query: { q: q || undefined, limit: 100 } } })),
    [q],
  );
  const [name, setName] = useState('');
  const action = useAction();
  return (
    <>
      <PageTitle>Groups</PageTitle>
      <Field label="Search groups">
        {(id) => (
          <input id={id} type="search" value={q} onChange={(e) => setQ(e.target.value)} autoComplete="off" />
        )}
      </Field>
      <LoadState loaded={groups}>
        {(data) => (
          <Table
            caption={`${data.total} group${data.total === 1 ? '' : 's'}`}
            rows={data.items}
            rowKey={(g) => g.id}
            columns={[
              {
                header: 'Group',
                cell: (g) => (
                  <Link href={`/admin/groups/${encodeURIComponent(g.displayName)}`}>{g.displayName}</Link>
                ),
              },
              { header: 'Description', cell: (g) => g.description ?? '' },
              { header: 'From', cell: (g) => (g.externalId ? 'SCIM' : 'Ferry') },
            ]}
          />
        )}
      </LoadState>
      {can(session, 'groups:write') ? (
        <section aria-labelledby="create-group">
          <h2 id="create-group">Create a group</h2>
          <Form
            label="Create a group"
            onSubmit={() =>
              action.run(async () => {
                const g = await need(api.POST('/api/v1/groups', { body: { displayName: name } }));
                setName('');
                groups.reload();
                return `Created ${g.displayName}.`;
              })
            }
          >
            <Field label="Group name">
              {(id) => (
                <input
                  id={id}
                  value={name}
                  required
                  onChange={(e) => setName(e.target.value)}
                  autoComplete="off"
                />
              )}
            </Field>
            <button type="submit" disabled={action.busy}>
              Create group
            </button>
            <Message message={action.message} />
          </Form>
        </section>
      ) : null}
    </>
  );
}

/** One group: its members (add, remove) and what it grants. */
export function GroupDetail({ refName }: { refName: string }) {
  const session = useSession();
  const group = useLoad(
    () => need(api.GET('/api/v1/groups/{ref}', { params: { path: { ref: refName } } })),
    [refName],
  );
  const grants = useLoad(
    () => need(api.GET('/api/v1/assignments', { params: { query: { group: refName } } })),
    [refName],
  );
  const [member, setMember] = useState('');
  const action = useAction();
  const write = can(session, 'groups:write');
  return (
    <>
      <PageTitle>{`Group ${refName}`}</PageTitle>
      <p>
        <Link href="/admin/groups">All groups</Link>
      </p>
      <Message message={action.message} />
      <LoadState loaded={group}>
        {(g) => (
          <Table
            caption="Members"
            rows={g.members ?? []}
            rowKey={(m) => m.id}
            columns={[
              { header: 'User name', cell: (m) => <code>{m.userName}</code> },
              { header: 'Name', cell: (m) => m.displayName ?? '' },
              {
                header: 'Actions',
                cell: (m) =>
                  write ? (
                    <button
                      type="button"
                      className="secondary"
                      disabled={action.busy}
                      onClick={() =>
                        action.run(async () => {
                          await need(
                            api.DELETE('/api/v1/groups/{ref}/members/{user}', {
                              params: { path: { ref: g.id, user: m.id } },
                            }),
                          );
                          group.reload();
                          return `Removed ${m.userName}.`;
                        })
                      }
                    >
                      Remove<span className="visually-hidden"> {m.userName}</span>
                    </button>
                  ) : null,
              },
            ]}
          />
        )}
      </LoadState>
      {write ? (
        <Form
          label="Add a member"
          onSubmit={() =>
            action.run(async () => {
              const g = group.data;
              if (!g) return undefined;
              await need(
                api.PUT('/api/v1/groups/{ref}/members/{user}', {
                  params: { path: { ref: g.id, user: member } },
                }),
              );
              const added = member;
              setMember('');
              group.reload();
              return `Added ${added} to ${g.displayName}.`;
            })
          }
        >
          <Field label="Add a member (user name)">
            {(id) => (
              <input
                id={id}
                value={member}
                required
                onChange={(e) => setMember(e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
          <button type="submit" disabled={action.busy}>
            Add member
          </button>
        </Form>
      ) : null}
      <LoadState loaded={grants}>
        {(data) => (
          <Table
            caption="AWS roles this group grants"
            rows={data.items}
            rowKey={(a) => a.id}
            columns={[{ header: 'Target', cell: (a) => a.target }]}
          />
        )}
      </LoadState>
    </>
  );
}
