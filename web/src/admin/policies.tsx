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

/** A policy as GET /api/v1/policies shows it (the same shape PUT takes; docs/conditional-access.md). */
interface Policy {
  id: string;
  name: string;
  state: 'on' | 'report-only' | 'off';
  include: { all: boolean; users: string[]; groups: string[]; workloads: string[] };
  exclude: { users: string[]; groups: string[]; workloads: string[] };
  targets: string[];
  excludeTargets: string[];
  conditions: {
    clients?: string[];
    locations?: { include: string[]; exclude: string[] };
    [other: string]: unknown;
  };
  grant: { block: boolean; require: string[]; operator: 'AND' | 'OR' };
  session: { maxCredentialLifetime?: number; signInFrequency?: number };
}
interface NamedLocation {
  name: string;
  ranges: string[];
}
type Requirement = 'mfa' | 'phishing-resistant-mfa' | 'compliant-device';

interface Draft {
  name: string;
  state: Policy['state'];
  all: boolean;
  groups: string;
  users: string;
  excludeGroups: string;
  excludeUsers: string;
  targets: string;
  effect: 'require' | 'block';
  require: Requirement[];
  operator: 'AND' | 'OR';
  clients: string[];
  locations: string;
  excludeLocations: string;
  maxLifetimeMinutes: string;
  signInFrequencyHours: string;
  /** what the form does not edit, kept as it was (workloads, risk, countries, device, time, …) */
  base: Policy | null;
}
const EMPTY: Draft = {
  name: '',
  state: 'report-only',
  all: false,
  groups: '',
  users: '',
  excludeGroups: '',
  excludeUsers: '',
  targets: 'aws:*/*',
  effect: 'require',
  require: ['mfa'],
  operator: 'AND',
  clients: [],
  locations: '',
  excludeLocations: '',
  maxLifetimeMinutes: '',
  signInFrequencyHours: '',
  base: null,
};
const draftOf = (p: Policy): Draft => ({
  name: p.name,
  state: p.state,
  all: p.include.all,
  groups: p.include.groups.join(', '),
  users: p.include.users.join(', '),
  excludeGroups: p.exclude.groups.join(', '),
  excludeUsers: p.exclude.users.join(', '),
  targets: p.targets.join(', '),
  effect: p.grant.block ? 'block' : 'require',
  require: p.grant.require as Requirement[],
  operator: p.grant.operator,
  clients: p.conditions.clients ?? [],
  locations: p.conditions.locations?.include.join(', ') ?? '',
  excludeLocations: p.conditions.locations?.exclude.join(', ') ?? '',
  maxLifetimeMinutes:
    p.session.maxCredentialLifetime !== undefined ? String(p.session.maxCredentialLifetime / 60) : '',
  signInFrequencyHours:
    p.session.signInFrequency !== undefined ? String(p.session.signInFrequency / 3600) : '',
  base: p,
});

const TARGET =
  /^(all|aws:(\d{12}|\*)\/(permission-set\/)?[\w+=,.@*-]{1,128}|ssh:[\w.:*@-]{1,253}|app:[\w.:/*-]{1,256}|admin:[a-z*-]{1,64})$/;
const REQUIREMENTS: Array<[Requirement, string]> = [
  ['mfa', 'MFA'],
  ['phishing-resistant-mfa', 'Phishing-resistant MFA (security key or passkey)'],
  ['compliant-device', 'A compliant device'],
];

function bodyOf(d: Draft) {
  const base = d.base;
  const locations =
    d.locations.trim() || d.excludeLocations.trim()
      ? { locations: { include: listOf(d.locations), exclude: listOf(d.excludeLocations) } }
      : {};
  const { clients: _c, locations: _l, ...otherConditions } = base?.conditions ?? {};
  return {
    state: d.state,
    include: {
      all: d.all,
      users: listOf(d.users),
      groups: listOf(d.groups),
      workloads: base?.include.workloads ?? [],
    },
    exclude: {
      users: listOf(d.excludeUsers),
      groups: listOf(d.excludeGroups),
      workloads: base?.exclude.workloads ?? [],
    },
    targets: listOf(d.targets),
    excludeTargets: base?.excludeTargets ?? [],
    conditions: {
      ...otherConditions,
      ...(d.clients.length > 0 ? { clients: d.clients } : {}),
      ...locations,
    },
    grant:
      d.effect === 'block'
        ? { block: true, require: [], operator: d.operator }
        : { block: false, require: d.require, operator: d.operator },
    session: {
      ...(d.maxLifetimeMinutes
        ? { maxCredentialLifetime: Math.round(Number(d.maxLifetimeMinutes) * 60) }
        : {}),
      ...(d.signInFrequencyHours
        ? { signInFrequency: Math.round(Number(d.signInFrequencyHours) * 3600) }
        : {}),
    },
  };
}

const who = (p: Policy) =>
  [
    p.include.all ? 'everyone' : null,
    ...p.include.groups.map((g) => `group ${g}`),
    ...p.include.users,
    ...p.include.workloads.map((w) => `workload ${w}`),
  ]
    .filter(Boolean)
    .join(', ') +
  (p.exclude.groups.length + p.exclude.users.length > 0
    ? `; not ${[...p.exclude.groups, ...p.exclude.users].join(', ')}`
    : '');
const grantText = (p: Policy) =>
  p.grant.block
    ? 'block'
    : p.grant.require.length
      ? p.grant.require.join(p.grant.operator === 'OR' ? ' or ' : ' and ')
      : 'allow';

/** Conditional access: policies (create, edit, switch on/report-only/off, remove), named locations, what-if. */
export function Policies() {
  const session = useSession();
  const write = can(session, 'policies:write');
  const list = useLoad(
    async () => (await need(api.GET('/api/v1/policies'))) as unknown as { items: Policy[] },
  );
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [editing, setEditing] = useState(false);
  const action = useAction();
  const set = (patch: Partial<Draft>) => setDraft((d) => ({ ...d, ...patch }));
  return (
    <>
      <PageTitle>Conditional access</PageTitle>
      {write ? null : <ReadOnlyNote permission="policies:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Policies"
            rows={data.items}
            rowKey={(p) => p.id}
            columns={[
              { header: 'Name', cell: (p) => p.name },
              { header: 'State', cell: (p) => p.state },
              { header: 'Who', cell: who },
              { header: 'Targets', cell: (p) => p.targets.join(', ') },
              { header: 'Grant', cell: grantText },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (p: Policy) => (
                        <div className="actions">
                          {(['on', 'report-only', 'off'] as const)
                            .filter((s) => s !== p.state)
                            .map((s) => (
                              <button
                                key={s}
                                type="button"
                                className="secondary"
                                disabled={action.busy}
                                onClick={() =>
                                  action.run(async () => {
                                    await need(
                                      api.POST('/api/v1/policies/{ref}/state', {
                                        params: { path: { ref: p.id } },
                                        body: { state: s },
                                      }),
                                    );
                                    list.reload();
                                    return `${p.name} is ${s}.`;
                                  })
                                }
                              >
                                {s === 'on' ? 'Turn on' : s === 'off' ? 'Turn off' : 'Report only'}
                                <span className="visually-hidden"> {p.name}</span>
                              </button>
                            ))}
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setDraft(draftOf(p));
                              setEditing(true);
                              document.getElementById('policy-form-heading')?.scrollIntoView();
                            }}
                          >
                            Edit<span className="visually-hidden"> {p.name}</span>
                          </button>
                          <ConfirmButton
                            label="Remove"
                            what={p.name}
                            question={`Remove the policy ${p.name}?`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/policies/{ref}', { params: { path: { ref: p.id } } }),
                                );
                                list.reload();
                                return `Removed ${p.name}.`;
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
          id="policy-form"
          title={editing ? `Edit ${draft.name}` : 'Create a policy'}
          submit={editing ? 'Save policy' : 'Create policy'}
          {...(editing
            ? {
                onCancel: () => {
                  setEditing(false);
                  setDraft(EMPTY);
                },
              }
            : {})}
          check={() => {
            if (!draft.name.trim()) return 'Name the policy.';
            if (
              !draft.all &&
              listOf(draft.groups).length + listOf(draft.users).length === 0 &&
              !draft.base?.include.workloads.length
            )
              return 'Include someone: everyone, groups or users.';
            const targets = listOf(draft.targets);
            if (targets.length === 0) return 'Give at least one target.';
            const bad = targets.find((t) => !TARGET.test(t));
            if (bad)
              return `${bad} is not a target: all, aws:<account|*>/<role>, ssh:<host>, app:<name> or admin:<role> (* is a wildcard).`;
            if (draft.effect === 'require' && draft.require.length === 0)
              return 'Choose what to require, or block.';
            for (const [v, what] of [
              [draft.maxLifetimeMinutes, 'Longest credential'],
              [draft.signInFrequencyHours, 'Sign in again after'],
            ] as const)
              if (v !== '' && !(Number(v) > 0)) return `${what} is a positive number.`;
            return null;
          }}
          onSubmit={async () => {
            const name = draft.name.trim();
            const { response, error } = await api.PUT('/api/v1/policies/{name}', {
              params: { path: { name } },
              body: bodyOf(draft),
            });
            if (error !== undefined || !response.ok)
              throw new Error(
                (error as { detail?: string; title?: string })?.detail ?? 'The request failed.',
              );
            list.reload();
            setEditing(false);
            setDraft(EMPTY);
            return response.status === 201 ? `Created ${name} (${draft.state}).` : `Saved ${name}.`;
          }}
        >
          <div className="row">
            <TextField
              label="Policy name"
              value={draft.name}
              required
              disabled={editing}
              onChange={(name) => set({ name })}
            />
            <Choice
              label="State"
              value={draft.state}
              onChange={(state) => set({ state })}
              hint="report-only records what it would do without changing any answer"
              options={[
                ['report-only', 'Report only'],
                ['on', 'On'],
                ['off', 'Off'],
              ]}
            />
          </div>
          <Check label="Applies to everyone" checked={draft.all} onChange={(all) => set({ all })} />
          <div className="row">
            <TextField
              label="Groups"
              value={draft.groups}
              hint="comma-separated group names"
              onChange={(groups) => set({ groups })}
            />
            <TextField
              label="Users"
              value={draft.users}
              hint="comma-separated user names"
              onChange={(users) => set({ users })}
            />
          </div>
          <div className="row">
            <TextField
              label="Except groups"
              value={draft.excludeGroups}
              hint="exclusions always win (break-glass accounts)"
              onChange={(excludeGroups) => set({ excludeGroups })}
            />
            <TextField
              label="Except users"
              value={draft.excludeUsers}
              onChange={(excludeUsers) => set({ excludeUsers })}
            />
          </div>
          <TextField
            label="Targets"
            value={draft.targets}
            required
            hint="comma-separated: all, aws:<account|*>/<role>, ssh:<host>, app:<name>, admin:<role>; * is a wildcard"
            onChange={(targets) => set({ targets })}
          />
          <div className="row">
            <Choice
              label="Grant"
              value={draft.effect}
              onChange={(effect) => set({ effect })}
              options={[
                ['require', 'Allow when the person has…'],
                ['block', 'Block'],
              ]}
            />
            {draft.effect === 'require' ? (
              <Choice
                label="Needs"
                value={draft.operator}
                onChange={(operator) => set({ operator })}
                options={[
                  ['AND', 'all of the ticked'],
                  ['OR', 'any one of the ticked'],
                ]}
              />
            ) : null}
          </div>
          {draft.effect === 'require' ? (
            <fieldset>
              <legend>Requirements</legend>
              {REQUIREMENTS.map(([r, text]) => (
                <Check
                  key={r}
                  label={text}
                  checked={draft.require.includes(r)}
                  onChange={(on) =>
                    set({ require: on ? [...draft.require, r] : draft.require.filter((x) => x !== r) })
                  }
                />
              ))}
            </fieldset>
          ) : null}
          <fieldset>
            <legend>Conditions (the policy applies only when each one given holds)</legend>
            <div className="row">
              {(['browser', 'cli', 'workload'] as const).map((c) => (
                <Check
                  key={c}
                  label={`Client: ${c}`}
                  checked={draft.clients.includes(c)}
                  onChange={(on) =>
                    set({ clients: on ? [...draft.clients, c] : draft.clients.filter((x) => x !== c) })
                  }
                />
              ))}
            </div>
            <div className="row">
              <TextField
                label="From locations"
                value={draft.locations}
                hint="named locations or CIDR ranges; any = every address"
                onChange={(locations) => set({ locations })}
              />
              <TextField
                label="Not from locations"
                value={draft.excludeLocations}
                onChange={(excludeLocations) => set({ excludeLocations })}
              />
            </div>
          </fieldset>
          <div className="row">
            <TextField
              label="Longest credential (minutes)"
              type="number"
              value={draft.maxLifetimeMinutes}
              hint="optional: caps console, STS and SSH certificate lifetimes"
              onChange={(maxLifetimeMinutes) => set({ maxLifetimeMinutes })}
            />
            <TextField
              label="Sign in again after (hours)"
              type="number"
              value={draft.signInFrequencyHours}
              hint="optional"
              onChange={(signInFrequencyHours) => set({ signInFrequencyHours })}
            />
          </div>
        </FormSection>
      ) : null}
      <NamedLocations write={write} />
      <WhatIf />
    </>
  );
}

function NamedLocations({ write }: { write: boolean }) {
  const list = useLoad(
    async () => (await need(api.GET('/api/v1/named-locations'))) as unknown as { items: NamedLocation[] },
  );
  const [name, setName] = useState('');
  const [ranges, setRanges] = useState('');
  const action = useAction();
  return (
    <section aria-labelledby="locations-heading">
      <h2 id="locations-heading">Named locations</h2>
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Named locations"
            rows={data.items}
            rowKey={(l) => l.name}
            columns={[
              { header: 'Name', cell: (l) => l.name },
              { header: 'Ranges', cell: (l) => l.ranges.join(', ') },
              ...(write
                ? [
                    {
                      header: 'Actions',
                      cell: (l: NamedLocation) => (
                        <div className="actions">
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setName(l.name);
                              setRanges(l.ranges.join(', '));
                            }}
                          >
                            Edit<span className="visually-hidden"> {l.name}</span>
                          </button>
                          <ConfirmButton
                            label="Remove"
                            what={`location ${l.name}`}
                            question={`Remove the location ${l.name}?`}
                            busy={action.busy}
                            onConfirm={() =>
                              action.run(async () => {
                                await need(
                                  api.DELETE('/api/v1/named-locations/{name}', {
                                    params: { path: { name: l.name } },
                                  }),
                                );
                                list.reload();
                                return `Removed ${l.name}.`;
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
          title="Set a named location"
          submit="Save location"
          check={() => {
            if (!/^[\w.-]{1,64}$/.test(name.trim())) return 'Name the location (letters, digits, . _ -).';
            const bad = listOf(ranges).find((r) => !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(r));
            if (listOf(ranges).length === 0) return 'Give at least one range.';
            if (bad) return `${bad} is not a CIDR range such as 203.0.113.0/24.`;
            return null;
          }}
          onSubmit={async () => {
            await need(
              api.PUT('/api/v1/named-locations/{name}', {
                params: { path: { name: name.trim() } },
                body: { ranges: listOf(ranges) },
              }),
            );
            list.reload();
            const saved = name.trim();
            setName('');
            setRanges('');
            return `Saved ${saved}.`;
          }}
        >
          <div className="row">
            <TextField label="Location name" value={name} required onChange={setName} />
            <TextField
              label="IP ranges"
              value={ranges}
              required
              hint="comma-separated CIDR ranges"
              onChange={setRanges}
            />
          </div>
        </FormSection>
      ) : null}
    </section>
  );
}

type WhatIfAnswer =
  paths['/api/v1/access/what-if']['post']['responses']['200']['content']['application/json'];

/** Which policy decided: a block or step-up among those switched on, else the ones that applied. */
function decidedBy(a: WhatIfAnswer): string {
  const on = a.policies.filter((p) => p.applied && p.state === 'on');
  const deciding = on.filter((p) => p.result === 'block' || p.result === 'step-up');
  if (deciding.length > 0) return deciding.map((p) => p.policy).join(', ');
  if (on.length > 0) return `${on.map((p) => p.policy).join(', ')} (satisfied)`;
  const reason = a.reasons.find((r) => r.source !== 'policy');
  return reason ? `no policy: ${reason.source}` : 'no policy applied';
}

function WhatIf() {
  const [user, setUser] = useState('');
  const [target, setTarget] = useState('');
  const [mfa, setMfa] = useState<'none' | 'totp' | 'webauthn'>('totp');
  const [client, setClient] = useState<'browser' | 'cli'>('browser');
  const [ip, setIp] = useState('');
  const [risk, setRisk] = useState<'none' | 'low' | 'medium' | 'high'>('none');
  const [answer, setAnswer] = useState<WhatIfAnswer | null>(null);
  return (
    <>
      <FormSection
        id="whatif"
        title="What if"
        submit="Ask"
        check={() => {
          if (!user.trim()) return 'Name the person.';
          if (!target.trim()) return 'Give the target, such as aws:123456789012/Developer.';
          return null;
        }}
        onSubmit={async () => {
          setAnswer(null);
          const r = await need(
            api.POST('/api/v1/access/what-if', {
              body: {
                user: user.trim(),
                target: target.trim(),
                mfa,
                client,
                signInRisk: risk,
                ...(ip.trim() ? { ip: ip.trim() } : {}),
              },
            }),
          );
          setAnswer(r);
          return undefined;
        }}
      >
        <p className="muted">
          What Ferry would answer for this person, target and circumstances, policy by policy. Nothing is
          written.
        </p>
        <div className="row">
          <TextField label="Person (user name)" value={user} required onChange={setUser} />
          <TextField
            label="Target"
            value={target}
            required
            hint="aws:123456789012/Developer, ssh:host, app:name, admin:role"
            onChange={setTarget}
          />
        </div>
        <div className="row">
          <Choice
            label="Signed in with"
            value={mfa}
            onChange={setMfa}
            options={[
              ['none', 'Password only'],
              ['totp', 'Authenticator code (MFA)'],
              ['webauthn', 'Security key or passkey'],
            ]}
          />
          <Choice
            label="Client"
            value={client}
            onChange={setClient}
            options={[
              ['browser', 'Browser'],
              ['cli', 'Command line'],
            ]}
          />
          <TextField label="From IP address" value={ip} hint="optional" onChange={setIp} />
          <Choice
            label="Sign-in risk"
            value={risk}
            onChange={setRisk}
            options={[
              ['none', 'None'],
              ['low', 'Low'],
              ['medium', 'Medium'],
              ['high', 'High'],
            ]}
          />
        </div>
      </FormSection>
      {answer ? (
        <section aria-labelledby="whatif-answer" aria-live="polite">
          <h3 id="whatif-answer" className="h3">
            Answer
          </h3>
          <dl className="facts" aria-label="What-if answer">
            <dt>Decision</dt>
            <dd className={`effect-${answer.result}`}>
              {answer.result}
              {answer.require?.length ? ` (needs ${answer.require.join(' and ')})` : ''}
              {answer.result === 'allow' && answer.maxDuration
                ? ` for up to ${duration(answer.maxDuration)}`
                : ''}
            </dd>
            <dt>Decided by</dt>
            <dd className="decided">{decidedBy(answer)}</dd>
          </dl>
          <ul>
            {answer.reasons.map((r, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: reasons have no id and never reorder
              <li key={i}>{r.message}</li>
            ))}
          </ul>
          <Table
            caption="Policy by policy"
            rows={answer.policies}
            rowKey={(p) => p.policy}
            columns={[
              { header: 'Policy', cell: (p) => p.policy },
              { header: 'State', cell: (p) => p.state },
              { header: 'Applied', cell: (p) => (p.applied ? 'yes' : 'no') },
              {
                header: 'Result',
                cell: (p) =>
                  p.result ? `${p.result}${p.require?.length ? ` (${p.require.join(', ')})` : ''}` : '—',
              },
              { header: 'Why', cell: (p) => p.why.join('; ') },
            ]}
          />
        </section>
      ) : null}
    </>
  );
}
