import { useState } from 'react';
import { api, need } from '../api/client.js';
import type { paths } from '../api/schema.js';
import { CopyBlock, FilterBox, LoadState, matches, PageTitle, Table, useLoad } from '../ui.js';

const origin = () => window.location.origin;

/** Everything the signed-in person may use now: AWS roles, apps, SSH logins. */
export function MyAccess() {
  const [filter, setFilter] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const roles = useLoad(() => need(api.GET('/api/v1/aws/entitlements')));
  const other = useLoad(() => need(api.GET('/api/v1/access/mine')));
  const permissionSets = useLoad(() => need(api.GET('/api/v1/aws/permission-set-entitlements')));
  return (
    <>
      <PageTitle>My access</PageTitle>
      <FilterBox label="Filter by account, role, app or host" value={filter} onChange={setFilter} />
      <section aria-labelledby="aws-heading">
        <h2 id="aws-heading">AWS accounts and roles</h2>
        <LoadState loaded={roles}>
          {(data) => {
            const items = data.items.filter((r) => matches(filter, r.accountAlias, r.accountId, r.roleName));
            return (
              <ul className="cards" aria-label="AWS roles">
                {items.length === 0 ? <li className="muted">No AWS role matches.</li> : null}
                {items.map((r) => {
                  const key = r.target;
                  const cli = [
                    `ferry --server ${origin()} login`,
                    `ferry creds --account ${r.accountId} --role ${r.roleName} --format env`,
                    'ferry aws config   # writes a profile for each of your roles',
                  ].join('\n');
                  const profile = [
                    `[profile ${r.profile}]`,
                    `credential_process = ferry --server ${origin()} creds --account ${r.accountId} --role ${r.roleName} --format credential_process`,
                    ...(r.endpointUrl ? [`endpoint_url = ${r.endpointUrl}`] : []),
                  ].join('\n');
                  return (
                    <li key={key} className="card">
                      <div className="card-head">
                        <div>
                          <strong>{r.roleName}</strong>
                          <span className="muted">
                            {' '}
                            in {r.accountAlias} ({r.accountId})
                          </span>
                        </div>
                        <div className="actions">
                          <a
                            className="button"
                            href={`/apps/aws-console?account=${encodeURIComponent(r.accountId)}&role=${encodeURIComponent(r.roleName)}`}
                          >
                            Open console
                            <span className="visually-hidden">
                              {' '}
                              as {r.roleName} in {r.accountAlias}
                            </span>
                          </a>
                          <button
                            type="button"
                            className="secondary"
                            aria-expanded={open === key}
                            aria-controls={`cli-${r.accountId}-${r.roleName}`}
                            onClick={() => setOpen(open === key ? null : key)}
                          >
                            Command line
                            <span className="visually-hidden">
                              {' '}
                              for {r.roleName} in {r.accountAlias}
                            </span>
                          </button>
                        </div>
                      </div>
                      <p className="muted">Sessions up to {Math.round(r.maxDurationSeconds / 3600)} h.</p>
                      {open === key ? (
                        <div id={`cli-${r.accountId}-${r.roleName}`}>
                          <CopyBlock label="Commands" text={cli} />
                          <CopyBlock label="Profile" text={profile} />
                        </div>
                      ) : null}
                    </li>
                  );
                })}
              </ul>
            );
          }}
        </LoadState>
      </section>
      {permissionSets.data && permissionSets.data.items.length > 0 ? (
        <PermissionSets items={permissionSets.data.items} filter={filter} />
      ) : null}
      <LoadState loaded={other}>
        {(data) => (
          <>
            <section aria-labelledby="apps-heading">
              <h2 id="apps-heading">Applications</h2>
              <ul className="cards" aria-label="Applications">
                {data.apps.filter((a) => matches(filter, a.label, a.name)).length === 0 ? (
                  <li className="muted">No application matches.</li>
                ) : null}
                {data.apps
                  .filter((a) => matches(filter, a.label, a.name))
                  .map((a) => (
                    <li key={a.name} className="card card-head">
                      <span>
                        <strong>{a.label}</strong>{' '}
                        <span className="muted">{a.kind === 'saml' ? 'SAML' : 'through Ferry’s proxy'}</span>
                      </span>
                      <a className="button" href={a.launchUrl}>
                        Open<span className="visually-hidden"> {a.label}</span>
                      </a>
                    </li>
                  ))}
              </ul>
            </section>
            <section aria-labelledby="ssh-heading">
              <h2 id="ssh-heading">SSH</h2>
              <Table
                caption="Hosts and logins you may use"
                rows={data.ssh.filter((s) => matches(filter, s.hosts, ...s.logins))}
                rowKey={(s) => `${s.hosts} ${s.logins.join(',')}`}
                columns={[
                  { header: 'Hosts', cell: (s) => <code>{s.hosts}</code> },
                  { header: 'Logins', cell: (s) => s.logins.join(', ') },
                  {
                    header: 'Command',
                    cell: (s) => (
                      <code>{`ferry ssh ${s.logins[0] ?? 'ec2-user'}@${s.hosts === '*' ? 'HOST' : s.hosts.replace(/\*/g, 'HOST')}`}</code>
                    ),
                  },
                ]}
              />
            </section>
          </>
        )}
      </LoadState>
    </>
  );
}

type PermissionSetItem =
  paths['/api/v1/aws/permission-set-entitlements']['get']['responses']['200']['content']['application/json']['items'][number];

/** The AWS CLI's name for the one sign-in all the profiles below share. */
const SSO_SESSION = 'ferry';

/**
 * An AWS CLI profile for one permission set through IAM Identity Center (`aws sso login
 * --sso-session ferry`, then `--profile <name>`), with the shared sso-session section.
 */
export function ssoProfile(p: PermissionSetItem): string {
  return [
    `[profile ${p.profile}]`,
    `sso_session = ${SSO_SESSION}`,
    `sso_account_id = ${p.accountId}`,
    `sso_role_name = ${p.permissionSet}`,
    `region = ${p.ssoRegion}`,
    '',
    `[sso-session ${SSO_SESSION}]`,
    `sso_start_url = ${p.startUrl}`,
    `sso_region = ${p.ssoRegion}`,
    'sso_registration_scopes = sso:account:access',
  ].join('\n');
}

/** Permission sets in IAM Identity Center the person may use: the access portal and a CLI profile each. */
function PermissionSets({ items, filter }: { items: PermissionSetItem[]; filter: string }) {
  const [open, setOpen] = useState<string | null>(null);
  const shown = items.filter((p) => matches(filter, p.accountAlias, p.accountId, p.permissionSet));
  const startUrl = items.find((p) => p.startUrl)?.startUrl ?? '';
  return (
    <section aria-labelledby="permission-sets-heading">
      <h2 id="permission-sets-heading">IAM Identity Center permission sets</h2>
      {startUrl ? (
        <p>
          Open them from the AWS access portal, <a href={startUrl}>{startUrl}</a>, or with the AWS CLI: add
          the profile, run <code>aws sso login --sso-session {SSO_SESSION}</code>, then use{' '}
          <code>--profile</code>.
        </p>
      ) : (
        <p className="notice" role="note">
          Ferry could not read the access portal address from IAM Identity Center just now; the profiles below
          need it in <code>sso_start_url</code>. Ask your administrator.
        </p>
      )}
      <ul className="cards" aria-label="Permission sets">
        {shown.length === 0 ? <li className="muted">No permission set matches.</li> : null}
        {shown.map((p) => {
          const key = p.target;
          const id = `sso-${p.accountId}-${p.permissionSet}`.replace(/[^\w-]/g, '-');
          return (
            <li key={key} className="card">
              <div className="card-head">
                <div>
                  <strong>{p.permissionSet}</strong>
                  <span className="muted">
                    {' '}
                    in {p.accountAlias} ({p.accountId})
                  </span>
                </div>
                <div className="actions">
                  <button
                    type="button"
                    className="secondary"
                    aria-expanded={open === key}
                    aria-controls={id}
                    onClick={() => setOpen(open === key ? null : key)}
                  >
                    AWS CLI profile
                    <span className="visually-hidden">
                      {' '}
                      for {p.permissionSet} in {p.accountAlias}
                    </span>
                  </button>
                </div>
              </div>
              <p className="muted">Sessions up to {Math.round(p.maxDurationSeconds / 3600)} h.</p>
              {open === key ? (
                <div id={id}>
                  <CopyBlock label="SSO profile" text={ssoProfile(p)} />
                  <CopyBlock
                    label="Commands"
                    text={`aws sso login --sso-session ${SSO_SESSION}\naws sts get-caller-identity --profile ${p.profile}`}
                  />
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
