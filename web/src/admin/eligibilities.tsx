import { useState } from 'react';
import { api, need } from '../api/client.js';
import type { paths } from '../api/schema.js';
import { can, useSession } from '../session.js';
import { LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import {
  Check,
  Choice,
  ConfirmButton,
  duration,
  FormSection,
  listOf,
  ReadOnlyNote,
  TextField,
} from './kit.js';

type Eligibility =
  paths['/api/v1/pim/eligibilities']['get']['responses']['200']['content']['application/json']['items'][number];
type EligibilityInput = NonNullable<
  paths['/api/v1/pim/eligibilities']['post']['requestBody']
>['content']['application/json'];

interface Draft {
  who: 'group' | 'user';
  name: string;
  what: 'aws-role' | 'admin-role' | 'other';
  account: string;
  role: string;
  target: string;
  minutes: string;
  requireJustification: boolean;
  requireTicket: boolean;
  requireMfa: boolean;
  approverGroups: string;
  approverUsers: string;
  approvalsRequired: string;
  /** kept as it was when editing (the console does not edit auto-approval) */
  autoApprove: EligibilityInput['autoApprove'];
}

const EMPTY: Draft = {
  who: 'group',
  name: '',
  what: 'aws-role',
  account: '',
  role: '',
  target: '',
  minutes: '60',
  requireJustification: true,
  requireTicket: false,
  requireMfa: false,
  approverGroups: '',
  approverUsers: '',
  approvalsRequired: '',
  autoApprove: null,
};

const draftOf = (e: Eligibility): Draft => ({
  who: e.principalType === 'user' ? 'user' : 'group',
  name: e.principalName ?? e.principalId,
  what: e.accountId === 'ferry' ? 'admin-role' : e.kind === 'aws-role' ? 'aws-role' : 'other',
  account: e.kind === 'aws-role' ? e.accountId : '',
  role: e.kind === 'aws-role' ? e.roleName : '',
  target: e.target,
  minutes: String(Math.round(e.maxDuration / 60)),
  requireJustification: e.requireJustification,
  requireTicket: e.requireTicket,
  requireMfa: e.requireMfa,
  approverGroups: e.approvers
    .filter((a) => a.type === 'group')
    .map((a) => a.name)
    .join(', '),
  approverUsers: e.approvers
    .filter((a) => a.type === 'user')
    .map((a) => a.name)
    .join(', '),
  approvalsRequired: String(e.approvalsRequired),
  autoApprove: e.autoApprove
    ? {
        ...(e.autoApprove.maxDuration !== undefined ? { maxDuration: e.autoApprove.maxDuration } : {}),
        ...(e.autoApprove.requesterGroups
          ? { requesterGroups: e.autoApprove.requesterGroups.map((g) => g.name) }
          : {}),
        ...(e.autoApprove.withTicket ? { withTicket: true } : {}),
      }
    : null,
});

const ADMIN_ROLES: Array<[string, string]> = [
  ['ferry-administrator', 'Ferry Administrator'],
  ['access-administrator', 'Access Administrator'],
  ['helpdesk', 'Helpdesk'],
  ['auditor', 'Auditor'],
  ['approver', 'Approver'],
];

/** Eligible roles (PIM): who may activate what, under which rules; create, edit, remove. */
export function Eligibilities() {
  const session = useSession();
  const write = can(session, 'pim:write');
  const list = useLoad(() => need(api.GET('/api/v1/pim/eligibilities')));
  const accounts = useLoad(async () =>
    can(session, 'access:read') ? need(api.GET('/api/v1/aws/accounts')) : { items: [] },
  );
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [editing, setEditing] = useState<string | null>(null);
  const action = useAction();
  const set = (patch: Partial<Draft>) => setDraft((d) => ({ ...d, ...patch }));

  const rules = (e: Eligibility) =>
    [
      e.requireJustification ? 'reason' : null,
      e.requireTicket ? 'ticket' : null,
      e.requireMfa ? 'MFA' : null,
      e.autoApprove ? 'auto-approval' : null,
    ]
      .filter(Boolean)
      .join(', ') || 'none';

  return (
    <>
      <PageTitle>Eligible roles</PageTitle>
      <p>
        People in these groups (or these people) may activate the target for a while, under the rules shown;
        they ask on <strong>Request access</strong>.
      </p>
      {write ? null : <ReadOnlyNote permission="pim:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Who may activate which role, under which rules"
            rows={data.items}
            rowKey={(e) => e.id}
            columns={[
              { header: 'Who', cell: (e) => `${e.principalName ?? e.principalId} (${e.principalType})` },
              { header: 'Target', cell: (e) => <code>{e.target}</code> },
              { header: 'At most', cell: (e) => duration(e.maxDuration) },
              { header: 'Asks for', cell: rules },
              {
                header: 'Approval',
                cell: (e) =>
                  e.approvalsRequired === 0
                    ? 'none'
                    : `${e.approvalsRequired} of ${e.approvers.map((a) => a.name).join(', ')}`,
              },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (e: Eligibility) => (
                        <div className="actions">
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setDraft(draftOf(e));
                              setEditing(e.id);
                              document.getElementById('eligibility-form-heading')?.scrollIntoView();
                            }}
                          >
                            Edit
                            <span className="visually-hidden">
                              {' '}
                              {e.target} for {e.principalName}
                            </span>
                          </button>
                          <ConfirmButton
                            label="Remove"
                            what={`${e.target} for ${e.principalName ?? e.principalId}`}
                            question={`Remove ${e.principalName ?? e.principalId}'s eligibility for ${e.target}?`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/pim/eligibilities/{id}', {
                                    params: { path: { id: e.id } },
                                  }),
                                );
                                list.reload();
                                return `Removed ${e.principalName ?? e.principalId}'s eligibility for ${e.target}.`;
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
          id="eligibility-form"
          title={editing ? `Edit ${draft.target || 'eligibility'} for ${draft.name}` : 'Make eligible'}
          submit={editing ? 'Save rules' : 'Make eligible'}
          {...(editing
            ? {
                onCancel: () => {
                  setEditing(null);
                  setDraft(EMPTY);
                },
              }
            : {})}
          check={() => {
            if (!draft.name.trim()) return `Name the ${draft.who}.`;
            const m = Number(draft.minutes);
            if (!Number.isInteger(m) || m < 15 || m > 720)
              return 'The longest activation is a whole number of minutes from 15 to 720 (12 hours).';
            if (draft.what === 'aws-role' && (!draft.account || !draft.role.trim()))
              return 'Choose the AWS account and name the role.';
            if (draft.what === 'admin-role' && !draft.role) return 'Choose the admin role.';
            if (draft.what === 'other' && !draft.target.trim()) return 'Give the target.';
            if (draft.approvalsRequired !== '' && !/^\d+$/.test(draft.approvalsRequired))
              return 'Approvals needed is a whole number.';
            return null;
          }}
          onSubmit={async () => {
            const body: EligibilityInput = {
              ...(draft.who === 'group' ? { group: draft.name.trim() } : { user: draft.name.trim() }),
              ...(draft.what === 'aws-role'
                ? { account: draft.account, role: draft.role.trim() }
                : draft.what === 'admin-role'
                  ? { account: 'ferry', role: draft.role }
                  : { target: draft.target.trim() }),
              maxDuration: Number(draft.minutes) * 60,
              requireJustification: draft.requireJustification,
              requireTicket: draft.requireTicket,
              requireMfa: draft.requireMfa,
              approverGroups: listOf(draft.approverGroups),
              approverUsers: listOf(draft.approverUsers),
              ...(draft.approvalsRequired !== ''
                ? { approvalsRequired: Number(draft.approvalsRequired) }
                : {}),
              autoApprove: draft.autoApprove,
            };
            const e = await need(api.POST('/api/v1/pim/eligibilities', { body }));
            list.reload();
            setEditing(null);
            setDraft(EMPTY);
            return `${e.principalName ?? body.group ?? body.user} may now activate ${e.target} for up to ${duration(e.maxDuration)}.`;
          }}
        >
          <div className="row">
            <Choice
              label="Who"
              value={draft.who}
              onChange={(who) => set({ who })}
              options={[
                ['group', 'A group'],
                ['user', 'A person'],
              ]}
            />
            <TextField
              label={draft.who === 'group' ? 'Group name' : 'User name'}
              value={draft.name}
              required
              disabled={editing !== null}
              onChange={(name) => set({ name })}
            />
          </div>
          <div className="row">
            <Choice
              label="What"
              value={draft.what}
              onChange={(what) => set({ what, role: '' })}
              options={[
                ['aws-role', 'An AWS role'],
                ['admin-role', 'A Ferry admin role'],
                ['other', 'Another target'],
              ]}
            />
            {draft.what === 'aws-role' ? (
              <>
                <Choice
                  label="AWS account"
                  value={draft.account}
                  required
                  onChange={(account) => set({ account })}
                  options={[
                    ['', 'Choose…'],
                    ...(accounts.data?.items ?? []).map(
                      (a) => [a.id, `${a.alias} (${a.id})`] as [string, string],
                    ),
                  ]}
                />
                <TextField label="Role name" value={draft.role} required onChange={(role) => set({ role })} />
              </>
            ) : draft.what === 'admin-role' ? (
              <Choice
                label="Admin role"
                value={draft.role}
                required
                onChange={(role) => set({ role })}
                options={[['', 'Choose…'], ...ADMIN_ROLES]}
              />
            ) : (
              <TextField
                label="Target"
                value={draft.target}
                required
                hint="aws:<account>/permission-set/<name>, group:<name> or ssh:<login>@<host or glob>"
                onChange={(target) => set({ target })}
              />
            )}
          </div>
          <div className="row">
            <TextField
              label="Longest activation (minutes)"
              type="number"
              value={draft.minutes}
              required
              hint="15 to 720"
              onChange={(minutes) => set({ minutes })}
            />
            <TextField
              label="Approver groups"
              value={draft.approverGroups}
              hint="comma-separated; none: no approval"
              onChange={(approverGroups) => set({ approverGroups })}
            />
            <TextField
              label="Approver users"
              value={draft.approverUsers}
              hint="comma-separated"
              onChange={(approverUsers) => set({ approverUsers })}
            />
            <TextField
              label="Approvals needed"
              type="number"
              value={draft.approvalsRequired}
              hint="default: 1 when there are approvers"
              onChange={(approvalsRequired) => set({ approvalsRequired })}
            />
          </div>
          <div className="row">
            <Check
              label="Ask for a reason"
              checked={draft.requireJustification}
              onChange={(requireJustification) => set({ requireJustification })}
            />
            <Check
              label="Ask for a ticket"
              checked={draft.requireTicket}
              onChange={(requireTicket) => set({ requireTicket })}
            />
            <Check
              label="Ask for MFA at activation"
              checked={draft.requireMfa}
              onChange={(requireMfa) => set({ requireMfa })}
            />
          </div>
        </FormSection>
      ) : null}
    </>
  );
}
