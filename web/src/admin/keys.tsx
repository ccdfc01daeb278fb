import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { type Loaded, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import { Choice, ConfirmButton, ReadOnlyNote } from './kit.js';

interface Key {
  id: string;
  state: string;
  algorithm: string;
  createdAt: string;
  activatedAt: string | null;
  purpose?: string;
  use?: string;
}

/**
 * One kind of signing key: its keys, and the two steps of a rotation. "Rotate" stages a next key that
 * is published at once (metadata, JWKS, ca.pub) and signs only once activated, so relying parties and
 * servers can pick it up first; "Activate" makes it current and retires the old one.
 */
function KeySection({
  id,
  title,
  intro,
  loaded,
  extraColumn,
  rotate,
  activate,
  write,
  children,
}: {
  id: string;
  title: string;
  intro: string;
  loaded: Loaded<{ items: Key[] }>;
  extraColumn?: [string, (k: Key) => string];
  rotate: () => Promise<void>;
  activate: () => Promise<void>;
  write: boolean;
  children?: React.ReactNode;
}) {
  const action = useAction();
  const staged = (loaded.data?.items ?? []).some((k) => k.state === 'next');
  return (
    <section aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>{title}</h2>
      <p className="muted">{intro}</p>
      <LoadState loaded={loaded}>
        {(data) => (
          <Table
            caption={title}
            rows={data.items}
            rowKey={(k) => k.id}
            columns={[
              { header: 'Key', cell: (k) => <code>{k.id}</code> },
              ...(extraColumn ? [{ header: extraColumn[0], cell: extraColumn[1] }] : []),
              { header: 'State', cell: (k) => (k.state === 'next' ? 'next (staged)' : k.state) },
              { header: 'Algorithm', cell: (k) => k.algorithm },
              { header: 'Created', cell: (k) => k.createdAt },
              { header: 'Signing since', cell: (k) => k.activatedAt ?? '—' },
            ]}
          />
        )}
      </LoadState>
      {write ? (
        <>
          {children}
          <div className="actions">
            <ConfirmButton
              label="Rotate"
              what={title}
              danger={false}
              question="Stage a new key? It is published now and signs once activated."
              busy={action.busy}
              onConfirm={() =>
                action.run(async () => {
                  await rotate();
                  loaded.reload();
                  return 'A new key is staged: published now, signing once activated.';
                })
              }
            />
            {staged ? (
              <ConfirmButton
                label="Activate the staged key"
                what={`for ${title}`}
                question="Sign with the staged key from now on? The current key is retired."
                busy={action.busy}
                onConfirm={() =>
                  action.run(async () => {
                    await activate();
                    loaded.reload();
                    return 'The staged key signs from now on; the old one is retired.';
                  })
                }
              />
            ) : null}
          </div>
          <Message message={action.message} />
        </>
      ) : null}
    </section>
  );
}

/** Signing keys: SAML, OpenID and SSH CA keys, each with a two-step rotation. */
export function SigningKeys() {
  const session = useSession();
  const write = can(session, 'keys:write');
  const saml = useLoad(() => need(api.GET('/api/v1/keys/saml')));
  const oidc = useLoad(() => need(api.GET('/api/v1/keys/oidc')));
  const ssh = useLoad(() => need(api.GET('/api/v1/ssh/ca-keys')));
  const [use, setUse] = useState<'user' | 'host'>('user');
  const [algorithm, setAlgorithm] = useState<'ssh-ed25519' | 'rsa-sha2-512'>('ssh-ed25519');
  return (
    <>
      <PageTitle>Signing keys</PageTitle>
      {write ? null : <ReadOnlyNote permission="keys:write" />}
      <KeySection
        id="saml-keys"
        title="SAML signing keys"
        intro="Sign assertions for AWS and SAML apps; a staged key appears in /saml/metadata at once."
        loaded={saml}
        write={write}
        rotate={async () => {
          await need(api.POST('/api/v1/keys/saml/rotate'));
        }}
        activate={async () => {
          await need(api.POST('/api/v1/keys/saml/activate'));
        }}
      />
      <KeySection
        id="oidc-keys"
        title="OpenID signing keys"
        intro="Sign ID and access tokens (ES256 and RS256, rotated together); a staged key is in the JWKS at once."
        loaded={oidc}
        write={write}
        extraColumn={['Purpose', (k) => k.purpose ?? '']}
        rotate={async () => {
          await need(api.POST('/api/v1/keys/oidc/rotate'));
        }}
        activate={async () => {
          await need(api.POST('/api/v1/keys/oidc/activate'));
        }}
      />
      <KeySection
        id="ssh-keys"
        title="SSH certificate authority keys"
        intro="Sign user and host certificates; a staged key is in ca.pub and known_hosts at once."
        loaded={ssh}
        write={write}
        extraColumn={['Use', (k) => k.use ?? '']}
        rotate={async () => {
          await need(api.POST('/api/v1/ssh/ca-keys/rotate', { body: { use, algorithm } }));
        }}
        activate={async () => {
          await need(api.POST('/api/v1/ssh/ca-keys/activate', { body: { use, algorithm } }));
        }}
      >
        <div className="row">
          <Choice
            label="Which CA"
            value={use}
            onChange={setUse}
            options={[
              ['user', 'User certificates'],
              ['host', 'Host certificates'],
            ]}
          />
          <Choice
            label="Algorithm"
            value={algorithm}
            onChange={setAlgorithm}
            options={[
              ['ssh-ed25519', 'Ed25519'],
              ['rsa-sha2-512', 'RSA (SHA-512)'],
            ]}
          />
        </div>
      </KeySection>
    </>
  );
}
