import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { CopyBlock, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import { Check, ConfirmButton, FormSection, ReadOnlyNote, TextField } from './kit.js';

/** Inbound SCIM connections (create: the token is shown once; revoke) and the Identity Center push. */
export function Scim() {
  const session = useSession();
  const write = can(session, 'provisioning:write');
  const list = useLoad(() => need(api.GET('/api/v1/scim/tokens')));
  const action = useAction();
  const [name, setName] = useState('');
  const [allowPasswords, setAllowPasswords] = useState(false);
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  return (
    <>
      <PageTitle>SCIM connections</PageTitle>
      <p>
        Entra ID (or another directory) provisions users and groups into Ferry over SCIM at{' '}
        <code>{`${window.location.origin}/scim/v2`}</code> with a connection's token.
      </p>
      {write ? null : <ReadOnlyNote permission="provisioning:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Inbound SCIM connections"
            rows={data.items}
            rowKey={(c) => c.id}
            columns={[
              { header: 'Name', cell: (c) => c.name },
              { header: 'Created', cell: (c) => `${c.createdAt} by ${c.createdBy}` },
              { header: 'Last used', cell: (c) => c.lastUsedAt ?? 'never' },
              { header: 'Passwords', cell: (c) => (c.passwordWrites ? 'may set' : 'no') },
              { header: 'State', cell: (c) => (c.revokedAt ? `revoked ${c.revokedAt}` : 'active') },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (c: (typeof data.items)[number]) =>
                        c.revokedAt ? null : (
                          <ConfirmButton
                            label="Revoke"
                            what={`the SCIM connection ${c.name}`}
                            question={`Revoke ${c.name}? Its token stops working at once.`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/scim/tokens/{id}', { params: { path: { id: c.id } } }),
                                );
                                list.reload();
                                return `Revoked ${c.name}.`;
                              })
                            }
                          />
                        ),
                    },
                  ]
                : []),
            ]}
          />
        )}
      </LoadState>
      {created ? (
        <section className="secret" aria-labelledby="token-heading">
          <h2 id="token-heading">The token of {created.name}</h2>
          <p>
            <strong>Copy it now: Ferry keeps only its hash and will not show it again.</strong> Paste it as
            the secret token of the provisioning app, with the tenant URL above.
          </p>
          <CopyBlock label="SCIM token" text={created.token} />
          <button type="button" className="secondary" onClick={() => setCreated(null)}>
            I have copied it
          </button>
        </section>
      ) : null}
      {write ? (
        <FormSection
          title="Create a connection"
          submit="Create connection"
          check={() => (name.trim() ? null : 'Name the connection (for example entra-prod).')}
          onSubmit={async () => {
            const r = await need(
              api.POST('/api/v1/scim/tokens', { body: { name: name.trim(), allowPasswords } }),
            );
            setCreated({ name: r.connection.name, token: r.token });
            setName('');
            setAllowPasswords(false);
            list.reload();
            return `Created ${r.connection.name}.`;
          }}
        >
          <div className="row">
            <TextField label="Connection name" value={name} required onChange={setName} />
          </div>
          <Check
            label="May set passwords of the users it provisions"
            checked={allowPasswords}
            onChange={setAllowPasswords}
            hint="Leave off for Entra ID: people sign in through Entra ID, not with a Ferry password."
          />
        </FormSection>
      ) : null}
      <IdentityCenter write={write} />
    </>
  );
}

function IdentityCenter({ write }: { write: boolean }) {
  const config = useLoad(async () => {
    const { data, response } = await api.GET('/api/v1/identity-center/scim');
    if (response.status === 404) return { configured: false as const };
    if (!response.ok || !data)
      throw new Error(`GET /api/v1/identity-center/scim answered ${response.status}`);
    return { configured: true as const, ...data };
  });
  const [plan, setPlan] = useState<{
    summary: {
      users: { create: number; update: number; delete: number };
      groups: { create: number; update: number; delete: number };
      members: { add: number; remove: number };
    };
    changes: Array<{ action: string; kind: string; name: string; details: string[] }>;
  } | null>(null);
  const [endpoint, setEndpoint] = useState('');
  const [token, setToken] = useState('');
  const action = useAction();
  const configured = config.data?.configured === true;
  return (
    <section aria-labelledby="ic-heading">
      <h2 id="ic-heading">IAM Identity Center push</h2>
      <Message message={action.message} />
      <LoadState loaded={config}>
        {(c) =>
          c.configured ? (
            <>
              <dl className="facts">
                <dt>Endpoint</dt>
                <dd>{c.endpoint}</dd>
                <dt>Configured</dt>
                <dd>
                  {c.updatedAt} by {c.updatedBy}
                </dd>
              </dl>
              <div className="actions">
                <button
                  type="button"
                  className="secondary"
                  disabled={action.busy}
                  onClick={() =>
                    action.run(async () => {
                      setPlan(await need(api.GET('/api/v1/identity-center/scim/plan')));
                      return undefined;
                    })
                  }
                >
                  Show what a push would change
                </button>
                {write ? (
                  <>
                    <button
                      type="button"
                      disabled={action.busy}
                      onClick={() =>
                        action.run(async () => {
                          // The answer streams NDJSON progress lines and ends with a result or error line.
                          const { data, error, response } = await api.POST(
                            '/api/v1/identity-center/scim/push',
                            {
                              parseAs: 'text',
                            },
                          );
                          if (!response.ok)
                            throw new Error(
                              (typeof error === 'object' && error !== null
                                ? (error as { detail?: string }).detail
                                : undefined) ?? `push answered ${response.status}`,
                            );
                          const lines = String(data ?? '')
                            .split('\n')
                            .filter((l) => l.trim() !== '')
                            .map((l) => JSON.parse(l) as { type: string; detail?: string; done?: number });
                          const last = lines.at(-1);
                          if (!last || last.type === 'error')
                            throw new Error(`The push failed: ${last?.detail ?? 'no answer'}`);
                          setPlan(null);
                          return `Pushed to IAM Identity Center (${lines.filter((l) => l.type === 'progress').length} changes).`;
                        })
                      }
                    >
                      Push now
                    </button>
                    <ConfirmButton
                      label="Stop pushing"
                      what="to IAM Identity Center"
                      question="Stop pushing users and groups to IAM Identity Center?"
                      busy={action.busy}
                      onConfirm={() =>
                        action.run(async () => {
                          await need(api.DELETE('/api/v1/identity-center/scim'));
                          config.reload();
                          return 'Stopped pushing to IAM Identity Center.';
                        })
                      }
                    />
                  </>
                ) : null}
              </div>
            </>
          ) : (
            <p className="muted">Not configured: Ferry does not push to IAM Identity Center.</p>
          )
        }
      </LoadState>
      {plan ? (
        <>
          <p role="status">
            A push would create {plan.summary.users.create}, update {plan.summary.users.update} and delete{' '}
            {plan.summary.users.delete} users; create {plan.summary.groups.create}, update{' '}
            {plan.summary.groups.update} and delete {plan.summary.groups.delete} groups; add{' '}
            {plan.summary.members.add} and remove {plan.summary.members.remove} memberships.
          </p>
          <Table
            caption="Changes a push would make"
            rows={plan.changes}
            rowKey={(c) => `${c.action} ${c.kind} ${c.name}`}
            columns={[
              { header: 'Change', cell: (c) => c.action },
              { header: 'Kind', cell: (c) => c.kind },
              { header: 'Name', cell: (c) => c.name },
              { header: 'Details', cell: (c) => c.details.join('; ') },
            ]}
          />
        </>
      ) : null}
      {write ? (
        <FormSection
          id="ic-config"
          title={
            configured ? 'Replace the Identity Center endpoint and token' : 'Push to IAM Identity Center'
          }
          submit="Save"
          check={() => {
            if (!/^https?:\/\/\S+$/.test(endpoint.trim())) return 'The SCIM endpoint is an https:// URL.';
            if (!token.trim()) return 'Paste the access token Identity Center shows.';
            return null;
          }}
          onSubmit={async () => {
            await need(
              api.PUT('/api/v1/identity-center/scim', {
                body: { endpoint: endpoint.trim(), token: token.trim() },
              }),
            );
            setEndpoint('');
            setToken('');
            config.reload();
            return 'Saved; Ferry pushes changes from now on.';
          }}
        >
          <div className="row">
            <TextField
              label="SCIM endpoint"
              type="url"
              value={endpoint}
              required
              hint="from Identity Center's automatic provisioning settings"
              onChange={setEndpoint}
            />
            <TextField
              label="Access token"
              type="password"
              value={token}
              required
              autoComplete="new-password"
              onChange={setToken}
            />
          </div>
        </FormSection>
      ) : null}
    </section>
  );
}
