import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import { Check, ConfirmButton, duration, FormSection, listOf, ReadOnlyNote, TextField } from './kit.js';

/** Group → Linux logins on matching hosts: add or replace (same group and hosts), remove. */
export function SshLogins() {
  const session = useSession();
  const write = can(session, 'access:write');
  const list = useLoad(() => need(api.GET('/api/v1/ssh/logins')));
  const action = useAction();
  const [group, setGroup] = useState('');
  const [hosts, setHosts] = useState('*');
  const [logins, setLogins] = useState('');
  const [portForwarding, setPortForwarding] = useState(false);
  const [agentForwarding, setAgentForwarding] = useState(false);
  const [minutes, setMinutes] = useState('');
  type Mapping = NonNullable<typeof list.data>['items'][number];
  return (
    <>
      <PageTitle>SSH logins</PageTitle>
      {write ? null : <ReadOnlyNote permission="access:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Group to Linux login mappings"
            rows={data.items}
            rowKey={(m) => m.id}
            columns={[
              { header: 'Group', cell: (m) => m.groupName ?? m.groupId },
              { header: 'Hosts', cell: (m) => <code>{m.hosts}</code> },
              { header: 'Logins', cell: (m) => m.logins.join(', ') },
              {
                header: 'Forwarding',
                cell: (m) =>
                  [m.portForwarding ? 'ports' : null, m.agentForwarding ? 'agent' : null]
                    .filter(Boolean)
                    .join(', ') || 'none',
              },
              {
                header: 'Longest certificate',
                cell: (m) => (m.maxDuration ? duration(m.maxDuration) : 'default'),
              },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (m: Mapping) => (
                        <div className="actions">
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setGroup(m.groupName ?? m.groupId);
                              setHosts(m.hosts);
                              setLogins(m.logins.join(', '));
                              setPortForwarding(m.portForwarding);
                              setAgentForwarding(m.agentForwarding);
                              setMinutes(m.maxDuration ? String(m.maxDuration / 60) : '');
                            }}
                          >
                            Edit
                            <span className="visually-hidden">
                              {' '}
                              {m.groupName} on {m.hosts}
                            </span>
                          </button>
                          <ConfirmButton
                            label="Remove"
                            what={`${m.groupName} on ${m.hosts}`}
                            question={`Remove ${m.groupName}'s logins on ${m.hosts}?`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/ssh/logins/{id}', { params: { path: { id: m.id } } }),
                                );
                                list.reload();
                                return `Removed ${m.groupName}'s logins on ${m.hosts}.`;
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
          title="Let a group log in"
          submit="Save logins"
          check={() => {
            if (!group.trim()) return 'Name the group.';
            if (!hosts.trim()) return 'Give a host glob (* for every host).';
            if (listOf(logins).length === 0) return 'Give at least one Linux login.';
            const bad = listOf(logins).find((l) => !/^[a-z_][a-z0-9_.-]{0,31}$/.test(l));
            if (bad) return `${bad} is not a Linux login name.`;
            if (minutes !== '' && !(Number(minutes) >= 1 && Number(minutes) <= 10080))
              return 'The longest certificate is 1 to 10080 minutes (a week).';
            return null;
          }}
          onSubmit={async () => {
            const m = await need(
              api.POST('/api/v1/ssh/logins', {
                body: {
                  group: group.trim(),
                  hosts: hosts.trim(),
                  logins: listOf(logins),
                  portForwarding,
                  agentForwarding,
                  ...(minutes ? { maxDuration: Math.round(Number(minutes) * 60) } : {}),
                },
              }),
            );
            list.reload();
            setGroup('');
            setLogins('');
            return `${m.groupName ?? group} may log in as ${m.logins.join(', ')} on ${m.hosts}.`;
          }}
        >
          <p className="muted">Saving the same group and hosts again replaces that mapping.</p>
          <div className="row">
            <TextField label="Group" value={group} required onChange={setGroup} />
            <TextField
              label="Hosts"
              value={hosts}
              required
              hint="a glob: *.dev.internal, * for all"
              onChange={setHosts}
            />
            <TextField
              label="Logins"
              value={logins}
              required
              hint="comma-separated, such as ec2-user"
              onChange={setLogins}
            />
            <TextField
              label="Longest certificate (minutes)"
              type="number"
              value={minutes}
              hint="optional"
              onChange={setMinutes}
            />
          </div>
          <div className="row">
            <Check label="Port forwarding" checked={portForwarding} onChange={setPortForwarding} />
            <Check label="Agent forwarding" checked={agentForwarding} onChange={setAgentForwarding} />
          </div>
        </FormSection>
      ) : null}
    </>
  );
}
