import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import { Choice, ConfirmButton, duration, FormSection, ReadOnlyNote, TextField } from './kit.js';

type Partition = 'aws' | 'aws-us-gov' | 'aws-cn';

/** AWS accounts and their roles: register, edit, remove. */
export function AwsAccounts() {
  const session = useSession();
  const write = can(session, 'access:write');
  const list = useLoad(() => need(api.GET('/api/v1/aws/accounts')));
  const action = useAction();
  const [selected, setSelected] = useState<string | null>(null);
  const [id, setId] = useState('');
  const [alias, setAlias] = useState('');
  const [partition, setPartition] = useState<Partition>('aws');
  const [provider, setProvider] = useState('Ferry');
  const [editing, setEditing] = useState(false);
  const reset = () => {
    setId('');
    setAlias('');
    setPartition('aws');
    setProvider('Ferry');
    setEditing(false);
  };
  return (
    <>
      <PageTitle>AWS accounts</PageTitle>
      {write ? null : <ReadOnlyNote permission="access:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Registered AWS accounts"
            rows={data.items}
            rowKey={(a) => a.id}
            columns={[
              { header: 'Account', cell: (a) => <code>{a.id}</code> },
              { header: 'Alias', cell: (a) => a.alias },
              { header: 'Partition', cell: (a) => a.partition },
              { header: 'SAML provider', cell: (a) => a.samlProviderArn },
              {
                header: 'Actions',
                cell: (a) => (
                  <div className="actions">
                    <button
                      type="button"
                      className="secondary"
                      aria-pressed={selected === a.id}
                      onClick={() => setSelected(selected === a.id ? null : a.id)}
                    >
                      Roles<span className="visually-hidden"> of {a.alias}</span>
                    </button>
                    {write ? (
                      <>
                        <button
                          type="button"
                          className="secondary"
                          onClick={() => {
                            setId(a.id);
                            setAlias(a.alias);
                            setPartition(a.partition as Partition);
                            setProvider(a.samlProviderName);
                            setEditing(true);
                          }}
                        >
                          Edit<span className="visually-hidden"> {a.alias}</span>
                        </button>
                        <ConfirmButton
                          label="Remove"
                          what={`account ${a.alias}`}
                          question={`Remove ${a.alias} (${a.id}), its roles and their assignments?`}
                          busy={action.busy}
                          onConfirm={() =>
                            action.run(async () => {
                              await need(
                                api.DELETE('/api/v1/aws/accounts/{account}', {
                                  params: { path: { account: a.id } },
                                }),
                              );
                              if (selected === a.id) setSelected(null);
                              list.reload();
                              return `Removed ${a.alias}.`;
                            })
                          }
                        />
                      </>
                    ) : null}
                  </div>
                ),
              },
            ]}
          />
        )}
      </LoadState>
      {selected ? <Roles account={selected} write={write} /> : null}
      {write ? (
        <FormSection
          id="account-form"
          title={editing ? `Edit account ${id}` : 'Register an AWS account'}
          submit={editing ? 'Save account' : 'Register account'}
          {...(editing ? { onCancel: reset } : {})}
          check={() => {
            if (!/^\d{12}$/.test(id.trim())) return 'The account id is 12 digits.';
            if (!alias.trim()) return 'Give the account an alias (the name people see).';
            return null;
          }}
          onSubmit={async () => {
            const a = await need(
              api.PUT('/api/v1/aws/accounts/{account}', {
                params: { path: { account: id.trim() } },
                body: { alias: alias.trim(), partition, samlProviderName: provider.trim() || 'Ferry' },
              }),
            );
            list.reload();
            reset();
            return `Saved ${a.alias} (${a.id}).`;
          }}
        >
          <div className="row">
            <TextField label="Account id" value={id} required disabled={editing} onChange={setId} />
            <TextField label="Alias" value={alias} required onChange={setAlias} />
            <Choice
              label="Partition"
              value={partition}
              onChange={setPartition}
              options={[
                ['aws', 'aws'],
                ['aws-us-gov', 'aws-us-gov'],
                ['aws-cn', 'aws-cn'],
              ]}
            />
            <TextField
              label="SAML provider name"
              value={provider}
              hint="the IAM identity provider that trusts Ferry in this account"
              onChange={setProvider}
            />
          </div>
        </FormSection>
      ) : null}
    </>
  );
}

function Roles({ account, write }: { account: string; write: boolean }) {
  const loaded = useLoad(
    () => need(api.GET('/api/v1/aws/accounts/{account}', { params: { path: { account } } })),
    [account],
  );
  const action = useAction();
  const [name, setName] = useState('');
  const [hours, setHours] = useState('1');
  const [description, setDescription] = useState('');
  const title = loaded.data ? `Roles in ${loaded.data.alias}` : 'Roles';
  return (
    <section aria-labelledby="roles-heading">
      <h2 id="roles-heading">{title}</h2>
      <Message message={action.message} />
      <LoadState loaded={loaded}>
        {(a) => (
          <Table
            caption={`IAM roles Ferry knows in ${a.alias}`}
            rows={a.roles}
            rowKey={(r) => r.name}
            columns={[
              { header: 'Role', cell: (r) => r.name },
              { header: 'ARN', cell: (r) => <code>{r.arn}</code> },
              { header: 'Longest session', cell: (r) => duration(r.maxSessionDuration) },
              { header: 'Description', cell: (r) => r.description ?? '' },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (r: (typeof a.roles)[number]) => (
                        <div className="actions">
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setName(r.name);
                              setHours(String(r.maxSessionDuration / 3600));
                              setDescription(r.description ?? '');
                            }}
                          >
                            Edit<span className="visually-hidden"> role {r.name}</span>
                          </button>
                          <ConfirmButton
                            label="Remove"
                            what={`role ${r.name}`}
                            question={`Remove ${r.name} and its assignments?`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/aws/accounts/{account}/roles/{role}', {
                                    params: { path: { account, role: r.name } },
                                  }),
                                );
                                loaded.reload();
                                return `Removed ${r.name}.`;
                              })
                            }
                          />
                        </div>
                      ),
                    },
                  ]
                : []),
            ]}
          />
        )}
      </LoadState>
      {write ? (
        <FormSection
          id="role-form"
          title="Add or change a role"
          submit="Save role"
          check={() => {
            if (!/^[\w+=,.@-]{1,64}$/.test(name.trim()))
              return 'The role name is 1–64 letters, digits or +=,.@_-';
            const h = Number(hours);
            if (!(h >= 1 && h <= 12)) return 'The longest session is 1 to 12 hours.';
            return null;
          }}
          onSubmit={async () => {
            const r = await need(
              api.PUT('/api/v1/aws/accounts/{account}/roles/{role}', {
                params: { path: { account, role: name.trim() } },
                body: {
                  maxSessionDuration: Math.round(Number(hours) * 3600),
                  description: description.trim() || null,
                },
              }),
            );
            loaded.reload();
            setName('');
            setDescription('');
            return `Saved role ${r.name}.`;
          }}
        >
          <div className="row">
            <TextField label="Role name" value={name} required onChange={setName} />
            <TextField
              label="Longest session (hours)"
              type="number"
              value={hours}
              required
              hint="the role's MaxSessionDuration in IAM, 1 to 12"
              onChange={setHours}
            />
            <TextField label="Description" value={description} onChange={setDescription} />
          </div>
        </FormSection>
      ) : null}
    </section>
  );
}
