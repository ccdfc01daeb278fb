import { useState } from 'react';
import { api, need } from '../api/client.js';
import { Field, Form, LoadState, PageTitle, Table, useAction, useLoad } from '../ui.js';

type Row = Record<string, unknown>;

const show = (v: unknown): string => {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.map(show).join(', ');
  if (typeof v === 'object') {
    const o = v as Row;
    return String(o.name ?? o.url ?? o.displayName ?? JSON.stringify(v));
  }
  return String(v);
};

/** A read-only list of one admin resource (its page in the console; changes go through the CLI or API). */
function ListPage({
  title,
  caption,
  load,
  columns,
  rowKey,
  sub,
}: {
  title: string;
  /** a second list on the same page: an h2 under the page's h1 */
  sub?: boolean;
  caption: string;
  load: () => Promise<{ items: Row[] }>;
  columns: Array<[header: string, key: string]>;
  rowKey: string;
}) {
  const loaded = useLoad(load);
  return (
    <>
      {sub ? <h2>{title}</h2> : <PageTitle>{title}</PageTitle>}
      <LoadState loaded={loaded}>
        {(data) => (
          <Table
            caption={caption}
            rows={data.items}
            rowKey={(r) => show(r[rowKey])}
            columns={columns.map(([header, key]) => ({ header, cell: (r: Row) => show(r[key]) }))}
          />
        )}
      </LoadState>
    </>
  );
}

export const AwsAccounts = () => (
  <ListPage
    title="AWS accounts"
    caption="Registered AWS accounts"
    load={() => need(api.GET('/api/v1/aws/accounts'))}
    rowKey="id"
    columns={[
      ['Account', 'id'],
      ['Alias', 'alias'],
      ['Partition', 'partition'],
      ['SAML provider', 'samlProviderArn'],
    ]}
  />
);
export const SshLogins = () => (
  <ListPage
    title="SSH logins"
    caption="Group to Linux login mappings"
    load={() => need(api.GET('/api/v1/ssh/logins'))}
    rowKey="id"
    columns={[
      ['Group', 'groupName'],
      ['Hosts', 'hosts'],
      ['Logins', 'logins'],
      ['Port forwarding', 'portForwarding'],
    ]}
  />
);
export const SamlProviders = () => (
  <ListPage
    title="SAML service providers"
    caption="Registered SAML service providers"
    load={() => need(api.GET('/api/v1/saml/service-providers'))}
    rowKey="id"
    columns={[
      ['Name', 'name'],
      ['Entity id', 'entityId'],
      ['ACS', 'acsUrls'],
      ['Open to all', 'openToAll'],
    ]}
  />
);
export const OidcClients = () => (
  <ListPage
    title="OpenID clients and workloads"
    caption="OpenID Connect clients"
    load={() => need(api.GET('/api/v1/oidc/clients'))}
    rowKey="clientId"
    columns={[
      ['Client id', 'clientId'],
      ['Name', 'name'],
      ['Kind', 'kind'],
      ['Grant types', 'grantTypes'],
      ['Active', 'active'],
    ]}
  />
);
export const ProxyApps = () => (
  <ListPage
    title="Proxied apps"
    caption="Applications behind the identity-aware proxy"
    load={() => need(api.GET('/api/v1/proxy/apps'))}
    rowKey="name"
    columns={[
      ['Name', 'name'],
      ['URL', 'url'],
      ['Upstream', 'upstream'],
      ['Groups', 'groups'],
    ]}
  />
);
export const Scim = () => (
  <>
    <ListPage
      title="SCIM connections"
      caption="Inbound SCIM tokens (Entra ID provisioning)"
      load={() => need(api.GET('/api/v1/scim/tokens'))}
      rowKey="id"
      columns={[
        ['Name', 'name'],
        ['Created', 'createdAt'],
        ['Last used', 'lastUsedAt'],
        ['Revoked', 'revokedAt'],
      ]}
    />
    <IdentityCenter />
  </>
);
function IdentityCenter() {
  const loaded = useLoad(async () => {
    const { data, response } = await api.GET('/api/v1/identity-center/scim');
    return response.ok && data ? data : null;
  });
  return (
    <section aria-labelledby="ic-heading">
      <h2 id="ic-heading">IAM Identity Center push</h2>
      {loaded.loading ? (
        <p className="muted">Loading…</p>
      ) : loaded.data ? (
        <dl className="facts">
          <dt>Endpoint</dt>
          <dd>{loaded.data.endpoint}</dd>
          <dt>Configured</dt>
          <dd>{loaded.data.updatedAt}</dd>
        </dl>
      ) : (
        <p className="muted">Not configured.</p>
      )}
    </section>
  );
}
export const Policies = () => (
  <>
    <ListPage
      title="Conditional access"
      caption="Policies"
      load={() => need(api.GET('/api/v1/policies'))}
      rowKey="name"
      columns={[
        ['Name', 'name'],
        ['State', 'state'],
        ['Targets', 'targets'],
        ['Grant', 'grant'],
      ]}
    />
    <ListPage
      title="Named locations"
      sub
      caption="Named locations"
      load={() => need(api.GET('/api/v1/named-locations'))}
      rowKey="name"
      columns={[
        ['Name', 'name'],
        ['Ranges', 'ranges'],
        ['Countries', 'countries'],
      ]}
    />
    <WhatIf />
  </>
);
function WhatIf() {
  const [user, setUser] = useState('');
  const [target, setTarget] = useState('');
  const [answer, setAnswer] = useState<string | null>(null);
  const action = useAction();
  return (
    <section aria-labelledby="whatif-heading">
      <h2 id="whatif-heading">What if</h2>
      <Form
        label="What if"
        onSubmit={() =>
          action.run(async () => {
            const r = await need(api.POST('/api/v1/access/what-if', { body: { user, target } }));
            setAnswer(JSON.stringify(r, null, 2));
            return undefined;
          })
        }
      >
        <div className="row">
          <Field label="User">
            {(id) => <input id={id} value={user} required onChange={(e) => setUser(e.target.value)} />}
          </Field>
          <Field label="Target (aws:123456789012/Developer)">
            {(id) => <input id={id} value={target} required onChange={(e) => setTarget(e.target.value)} />}
          </Field>
        </div>
        <button type="submit" disabled={action.busy}>
          Ask
        </button>
      </Form>
      {action.message ? (
        <p className="error" role="alert">
          {action.message.text}
        </p>
      ) : null}
      {answer ? <pre>{answer}</pre> : null}
    </section>
  );
}
export const Eligibilities = () => (
  <ListPage
    title="Eligible roles"
    caption="Who may activate which role, under which rules"
    load={() => need(api.GET('/api/v1/pim/eligibilities'))}
    rowKey="id"
    columns={[
      ['Who', 'principalName'],
      ['Target', 'target'],
      ['Max seconds', 'maxDuration'],
      ['Approvers', 'approvers'],
      ['Approvals', 'approvalsRequired'],
    ]}
  />
);
export const Reviews = () => (
  <ListPage
    title="Access reviews"
    caption="Access reviews"
    load={() => need(api.GET('/api/v1/reviews'))}
    rowKey="id"
    columns={[
      ['Name', 'name'],
      ['State', 'state'],
      ['Deadline', 'deadline'],
      ['Reviewers', 'reviewers'],
    ]}
  />
);
export const SigningKeys = () => (
  <>
    <ListPage
      title="SAML signing keys"
      caption="SAML signing keys"
      load={() => need(api.GET('/api/v1/keys/saml'))}
      rowKey="id"
      columns={[
        ['Key', 'id'],
        ['State', 'state'],
        ['Algorithm', 'algorithm'],
        ['Active since', 'activatedAt'],
      ]}
    />
    <ListPage
      title="OpenID signing keys"
      sub
      caption="OpenID Connect signing keys"
      load={() => need(api.GET('/api/v1/keys/oidc'))}
      rowKey="id"
      columns={[
        ['Key', 'id'],
        ['Purpose', 'purpose'],
        ['State', 'state'],
        ['Algorithm', 'algorithm'],
      ]}
    />
    <ListPage
      title="SSH certificate authority keys"
      sub
      caption="SSH CA keys"
      load={() => need(api.GET('/api/v1/ssh/ca-keys'))}
      rowKey="id"
      columns={[
        ['Key', 'id'],
        ['Use', 'use'],
        ['State', 'state'],
        ['Algorithm', 'algorithm'],
      ]}
    />
  </>
);
