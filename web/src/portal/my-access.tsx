import { useState } from 'react';
import { api, need } from '../api/client.js';
import { CopyBlock, FilterBox, LoadState, matches, PageTitle, Table, useLoad } from '../ui.js';

const origin = () => window.location.origin;

/** Everything the signed-in person may use now: AWS roles, apps, SSH logins. */
export function MyAccess() {
  const [filter, setFilter] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const roles = useLoad(() => need(api.GET('/api/v1/aws/entitlements')));
  const other = useLoad(() => need(api.GET('/api/v1/access/mine')));
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
