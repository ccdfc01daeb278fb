import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { CopyBlock, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import { Check, Choice, ConfirmButton, FormSection, listOf, ReadOnlyNote, TextField } from './kit.js';

const isUrl = (s: string) => /^https?:\/\/[^\s/]+/.test(s);

type Grant = 'authorization_code' | 'refresh_token' | 'device_code';
const GRANTS: Array<[Grant, string]> = [
  ['authorization_code', 'Authorization code'],
  ['refresh_token', 'Refresh token'],
  ['device_code', 'Device code'],
];

/** OpenID clients: relying parties (sign-in for apps) and workload identities; secrets are shown once. */
export function OidcClients() {
  const session = useSession();
  const write = can(session, 'apps:write');
  const list = useLoad(() => need(api.GET('/api/v1/oidc/clients')));
  const action = useAction();
  const [secret, setSecret] = useState<{ clientId: string; secret: string } | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'relying-party' | 'workload'>('relying-party');
  const [authMethod, setAuthMethod] = useState<'client_secret_basic' | 'none'>('client_secret_basic');
  const [redirects, setRedirects] = useState('');
  const [grants, setGrants] = useState<Grant[]>(['authorization_code']);
  const [pkce, setPkce] = useState(true);
  const reset = () => {
    setEditing(null);
    setName('');
    setKind('relying-party');
    setAuthMethod('client_secret_basic');
    setRedirects('');
    setGrants(['authorization_code']);
    setPkce(true);
  };
  type Client = NonNullable<typeof list.data>['items'][number];
  return (
    <>
      <PageTitle>OpenID clients and workloads</PageTitle>
      {write ? null : <ReadOnlyNote permission="apps:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="OpenID Connect clients"
            rows={data.items}
            rowKey={(c) => c.clientId}
            columns={[
              { header: 'Client id', cell: (c) => <code>{c.clientId}</code> },
              { header: 'Name', cell: (c) => c.name },
              { header: 'Kind', cell: (c) => c.kind },
              { header: 'Grant types', cell: (c) => c.grantTypes.join(', ') },
              { header: 'Redirect URIs', cell: (c) => c.redirectUris.join(', ') },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (c: Client) => (
                        <div className="actions">
                          {c.kind === 'relying-party' ? (
                            <button
                              type="button"
                              className="secondary"
                              onClick={() => {
                                setEditing(c.clientId);
                                setName(c.name);
                                setKind(c.kind);
                                setRedirects(c.redirectUris.join('\n'));
                                setGrants(c.grantTypes as Grant[]);
                                setPkce(c.requirePkce);
                              }}
                            >
                              Edit<span className="visually-hidden"> {c.name}</span>
                            </button>
                          ) : null}
                          <ConfirmButton
                            label="Remove"
                            what={c.name}
                            question={`Remove ${c.name}, its tokens${c.kind === 'workload' ? ' and its assignments' : ''}?`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/oidc/clients/{ref}', {
                                    params: { path: { ref: c.clientId } },
                                  }),
                                );
                                list.reload();
                                return `Removed ${c.name}.`;
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
      {secret ? (
        <section className="secret" aria-labelledby="client-secret-heading">
          <h2 id="client-secret-heading">The secret of {secret.clientId}</h2>
          <p>
            <strong>Copy it now: Ferry keeps only its hash and will not show it again.</strong>
          </p>
          <CopyBlock label="Client secret" text={secret.secret} />
          <button type="button" className="secondary" onClick={() => setSecret(null)}>
            I have copied it
          </button>
        </section>
      ) : null}
      {write ? (
        <FormSection
          id="client-form"
          title={editing ? `Edit ${name}` : 'Register a client'}
          submit={editing ? 'Save client' : 'Register client'}
          {...(editing ? { onCancel: reset } : {})}
          check={() => {
            if (!name.trim()) return 'Name the client.';
            if (kind === 'relying-party') {
              const uris = listOf(redirects);
              if (grants.includes('authorization_code') && uris.length === 0)
                return 'A relying party with the authorization code grant needs a redirect URI.';
              const bad = uris.find((u) => !/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(u));
              if (bad) return `${bad} is not an absolute URI.`;
              if (grants.length === 0) return 'Choose at least one grant type.';
            }
            return null;
          }}
          onSubmit={async () => {
            if (editing) {
              const c = await need(
                api.PATCH('/api/v1/oidc/clients/{ref}', {
                  params: { path: { ref: editing } },
                  body: { redirectUris: listOf(redirects), grantTypes: grants, requirePkce: pkce },
                }),
              );
              list.reload();
              reset();
              return `Saved ${c.name}.`;
            }
            const r = await need(
              api.POST('/api/v1/oidc/clients', {
                body:
                  kind === 'workload'
                    ? { name: name.trim(), kind }
                    : {
                        name: name.trim(),
                        kind,
                        authMethod,
                        redirectUris: listOf(redirects),
                        grantTypes: grants,
                        requirePkce: pkce,
                      },
              }),
            );
            list.reload();
            reset();
            if (r.clientSecret) setSecret({ clientId: r.client.clientId, secret: r.clientSecret });
            return `Registered ${r.client.name} as ${r.client.clientId}.`;
          }}
        >
          <div className="row">
            <TextField
              label="Client name"
              value={name}
              required
              disabled={editing !== null}
              onChange={setName}
            />
            {editing ? null : (
              <Choice
                label="Kind"
                value={kind}
                onChange={setKind}
                options={[
                  ['relying-party', 'An app people sign in to (relying party)'],
                  ['workload', 'A workload (machine identity)'],
                ]}
              />
            )}
            {editing || kind === 'workload' ? null : (
              <Choice
                label="Client authentication"
                value={authMethod}
                onChange={setAuthMethod}
                options={[
                  ['client_secret_basic', 'Client secret'],
                  ['none', 'None (public client, PKCE)'],
                ]}
              />
            )}
          </div>
          {kind === 'relying-party' ? (
            <>
              <TextField
                label="Redirect URIs"
                value={redirects}
                multiline
                hint="one per line"
                onChange={setRedirects}
              />
              <fieldset>
                <legend>Grant types</legend>
                <div className="row">
                  {GRANTS.map(([g, text]) => (
                    <Check
                      key={g}
                      label={text}
                      checked={grants.includes(g)}
                      onChange={(on) => setGrants(on ? [...grants, g] : grants.filter((x) => x !== g))}
                    />
                  ))}
                </div>
              </fieldset>
              <Check label="Require PKCE" checked={pkce} onChange={setPkce} />
            </>
          ) : null}
        </FormSection>
      ) : null}
    </>
  );
}

type AuthnContext = 'single-factor' | 'mfa' | 'phishing-resistant';

/** SAML service providers: register from metadata or entity id + ACS URLs, edit, assign groups, remove. */
export function SamlProviders() {
  const session = useSession();
  const write = can(session, 'apps:write');
  const list = useLoad(() => need(api.GET('/api/v1/saml/service-providers')));
  const action = useAction();
  const [editing, setEditing] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [metadata, setMetadata] = useState('');
  const [entityId, setEntityId] = useState('');
  const [acs, setAcs] = useState('');
  const [minimum, setMinimum] = useState<AuthnContext>('mfa');
  const [openToAll, setOpenToAll] = useState(false);
  const [groupsOf, setGroupsOf] = useState<{ ref: string; name: string; groups: string } | null>(null);
  const reset = () => {
    setEditing(null);
    setName('');
    setMetadata('');
    setEntityId('');
    setAcs('');
    setMinimum('mfa');
    setOpenToAll(false);
  };
  type Sp = NonNullable<typeof list.data>['items'][number];
  return (
    <>
      <PageTitle>SAML service providers</PageTitle>
      {write ? null : <ReadOnlyNote permission="apps:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Registered SAML service providers"
            rows={data.items}
            rowKey={(s) => s.id}
            columns={[
              { header: 'Name', cell: (s) => s.name },
              { header: 'Entity id', cell: (s) => <code>{s.entityId}</code> },
              { header: 'ACS', cell: (s) => s.acsUrls.map((a) => a.url).join(', ') },
              { header: 'Sign-in at least', cell: (s) => s.minimumAuthnContext },
              { header: 'Open to all', cell: (s) => (s.openToAll ? 'yes' : 'no') },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (s: Sp) => (
                        <div className="actions">
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setEditing(s.id);
                              setName(s.name);
                              setEntityId(s.entityId);
                              setAcs(s.acsUrls.map((a) => a.url).join('\n'));
                              setMinimum(s.minimumAuthnContext as AuthnContext);
                              setOpenToAll(s.openToAll);
                            }}
                          >
                            Edit<span className="visually-hidden"> {s.name}</span>
                          </button>
                          <button
                            type="button"
                            className="secondary"
                            onClick={() =>
                              action.run(async () => {
                                const g = await need(
                                  api.GET('/api/v1/saml/service-providers/{ref}/groups', {
                                    params: { path: { ref: s.id } },
                                  }),
                                );
                                setGroupsOf({ ref: s.id, name: s.name, groups: g.groups.join(', ') });
                                return undefined;
                              })
                            }
                          >
                            Groups<span className="visually-hidden"> of {s.name}</span>
                          </button>
                          <ConfirmButton
                            label="Remove"
                            what={s.name}
                            question={`Remove ${s.name}? People can no longer sign in to it.`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/saml/service-providers/{ref}', {
                                    params: { path: { ref: s.id } },
                                  }),
                                );
                                list.reload();
                                return `Removed ${s.name}.`;
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
      {groupsOf ? (
        <FormSection
          id="sp-groups"
          title={`Groups that may use ${groupsOf.name}`}
          submit="Save groups"
          onCancel={() => setGroupsOf(null)}
          onSubmit={async () => {
            await need(
              api.PUT('/api/v1/saml/service-providers/{ref}/groups', {
                params: { path: { ref: groupsOf.ref } },
                body: { groups: listOf(groupsOf.groups) },
              }),
            );
            const done = `Saved the groups of ${groupsOf.name}.`;
            setGroupsOf(null);
            return done;
          }}
        >
          <TextField
            label="Groups"
            value={groupsOf.groups}
            hint="comma-separated; none: nobody (unless open to all)"
            onChange={(groups) => setGroupsOf({ ...groupsOf, groups })}
          />
        </FormSection>
      ) : null}
      {write ? (
        <FormSection
          id="sp-form"
          title={editing ? `Edit ${name}` : 'Register a service provider'}
          submit={editing ? 'Save service provider' : 'Register service provider'}
          {...(editing ? { onCancel: reset } : {})}
          check={() => {
            if (!name.trim()) return 'Name the service provider.';
            if (!metadata.trim()) {
              if (!entityId.trim()) return 'Paste its metadata, or give its entity id and ACS URLs.';
              const urls = listOf(acs);
              if (urls.length === 0) return 'Give at least one ACS URL.';
              const bad = urls.find((u) => !isUrl(u));
              if (bad) return `${bad} is not an http(s) URL.`;
            }
            return null;
          }}
          onSubmit={async () => {
            const body = {
              name: name.trim(),
              ...(metadata.trim()
                ? { metadataXml: metadata.trim() }
                : { entityId: entityId.trim(), acsUrls: listOf(acs) }),
              minimumAuthnContext: minimum,
              openToAll,
            };
            const sp = editing
              ? await need(
                  api.PATCH('/api/v1/saml/service-providers/{ref}', {
                    params: { path: { ref: editing } },
                    body,
                  }),
                )
              : await need(api.POST('/api/v1/saml/service-providers', { body }));
            list.reload();
            reset();
            return `Saved ${sp.name} (${sp.entityId}).`;
          }}
        >
          <div className="row">
            <TextField label="Service provider name" value={name} required onChange={setName} />
            <Choice
              label="Weakest sign-in accepted"
              value={minimum}
              onChange={setMinimum}
              options={[
                ['single-factor', 'Password'],
                ['mfa', 'MFA'],
                ['phishing-resistant', 'Phishing-resistant MFA'],
              ]}
            />
          </div>
          <TextField
            label="Metadata XML"
            value={metadata}
            multiline
            hint="paste the SP's metadata, or leave empty and give the entity id and ACS URLs"
            onChange={setMetadata}
          />
          <div className="row">
            <TextField label="Entity id" value={entityId} onChange={setEntityId} />
            <TextField label="ACS URLs" value={acs} multiline hint="one per line" onChange={setAcs} />
          </div>
          <Check
            label="Open to every active user while no group is assigned"
            checked={openToAll}
            onChange={setOpenToAll}
          />
        </FormSection>
      ) : null}
    </>
  );
}

/** Apps behind the identity-aware proxy: register or replace, remove. */
export function ProxyApps() {
  const session = useSession();
  const write = can(session, 'apps:write');
  const list = useLoad(() => need(api.GET('/api/v1/proxy/apps')));
  const action = useAction();
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [upstream, setUpstream] = useState('');
  const [groups, setGroups] = useState('');
  const [openToAll, setOpenToAll] = useState(false);
  const [editing, setEditing] = useState(false);
  const reset = () => {
    setName('');
    setUrl('');
    setUpstream('');
    setGroups('');
    setOpenToAll(false);
    setEditing(false);
  };
  type App = NonNullable<typeof list.data>['items'][number];
  return (
    <>
      <PageTitle>Proxied apps</PageTitle>
      {write ? null : <ReadOnlyNote permission="apps:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Applications behind the identity-aware proxy"
            rows={data.items}
            rowKey={(a) => a.name}
            columns={[
              { header: 'Name', cell: (a) => a.name },
              { header: 'URL', cell: (a) => a.url },
              { header: 'Upstream', cell: (a) => a.upstream },
              {
                header: 'Groups',
                cell: (a) => (a.groups.length ? a.groups.join(', ') : a.openToAll ? 'everyone' : 'nobody'),
              },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (a: App) => (
                        <div className="actions">
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setName(a.name);
                              setUrl(a.url);
                              setUpstream(a.upstream);
                              setGroups(a.groups.join(', '));
                              setOpenToAll(a.openToAll);
                              setEditing(true);
                            }}
                          >
                            Edit<span className="visually-hidden"> {a.name}</span>
                          </button>
                          <ConfirmButton
                            label="Remove"
                            what={a.name}
                            question={`Stop serving ${a.name}?`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/proxy/apps/{name}', {
                                    params: { path: { name: a.name } },
                                  }),
                                );
                                list.reload();
                                return `Removed ${a.name}.`;
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
          id="proxy-form"
          title={editing ? `Edit ${name}` : 'Register an app'}
          submit={editing ? 'Save app' : 'Register app'}
          {...(editing ? { onCancel: reset } : {})}
          check={() => {
            if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name.trim()))
              return 'Name the app with lower-case letters, digits and dashes.';
            if (!isUrl(url.trim())) return 'The URL people open is an http(s) URL.';
            if (!isUrl(upstream.trim())) return 'The upstream is an http(s) URL.';
            return null;
          }}
          onSubmit={async () => {
            const a = await need(
              api.PUT('/api/v1/proxy/apps/{name}', {
                params: { path: { name: name.trim() } },
                body: { url: url.trim(), upstream: upstream.trim(), groups: listOf(groups), openToAll },
              }),
            );
            list.reload();
            reset();
            return `Saved ${a.name}.`;
          }}
        >
          <div className="row">
            <TextField label="App name" value={name} required disabled={editing} onChange={setName} />
            <TextField
              label="URL people open"
              value={url}
              required
              hint="its own origin, such as https://grafana.apps.example"
              onChange={setUrl}
            />
            <TextField
              label="Upstream"
              value={upstream}
              required
              hint="where requests go, such as http://10.0.3.7:3000"
              onChange={setUpstream}
            />
          </div>
          <TextField label="Groups" value={groups} hint="comma-separated" onChange={setGroups} />
          <Check
            label="Open to every active user while no group is assigned"
            checked={openToAll}
            onChange={setOpenToAll}
          />
        </FormSection>
      ) : null}
    </>
  );
}
