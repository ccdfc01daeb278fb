import { useEffect, useState } from 'react';
import { api, need } from '../api/client.js';
import { Field, Form, LoadState, Message, PageTitle, Table, timeLeft, useAction, useLoad } from '../ui.js';

const DURATIONS = [900, 1800, 3600, 7200, 14400, 28800, 43200];
const label = (s: number) => (s < 3600 ? `${s / 60} minutes` : `${s / 3600} hour${s === 3600 ? '' : 's'}`);

/** Roles the person may activate just in time, and their activations with live status. */
export function Elevate() {
  const eligible = useLoad(() => need(api.GET('/api/v1/pim/eligible')));
  const mine = useLoad(
    () => need(api.GET('/api/v1/pim/activations', { params: { query: { mine: true } } })),
    [],
    5000,
  );
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(t);
  }, []);
  const end = useAction();
  return (
    <>
      <PageTitle>Request access</PageTitle>
      <section aria-labelledby="eligible-heading">
        <h2 id="eligible-heading">Roles you may activate</h2>
        <LoadState loaded={eligible}>
          {(data) =>
            data.items.length === 0 ? (
              <p className="muted">No role is eligible for you.</p>
            ) : (
              <ul className="cards" aria-label="Eligible roles">
                {data.items.map((e) => (
                  <li key={e.id} className="card">
                    <RequestForm eligibility={e} onDone={mine.reload} />
                  </li>
                ))}
              </ul>
            )
          }
        </LoadState>
      </section>
      <section aria-labelledby="mine-heading">
        <h2 id="mine-heading">Your activations</h2>
        <Message message={end.message} />
        <LoadState loaded={mine}>
          {(data) => (
            <Table
              caption="Requested, active and recent activations (updated every few seconds)"
              rows={data.items
                .filter((a) => ['requested', 'approved', 'active'].includes(a.state))
                .concat(
                  data.items
                    .filter((a) => !['requested', 'approved', 'active'].includes(a.state))
                    .slice(0, 5),
                )}
              rowKey={(a) => a.id}
              columns={[
                { header: 'Role', cell: (a) => a.target },
                { header: 'State', cell: (a) => <span className={`state state-${a.state}`}>{a.state}</span> },
                {
                  header: 'Time left',
                  cell: (a) =>
                    a.state === 'active'
                      ? timeLeft(a.expiresAt, now)
                      : a.state === 'requested'
                        ? `answer by ${new Date(a.answerBy).toLocaleTimeString()}`
                        : '—',
                },
                { header: 'Approvals', cell: (a) => `${a.approvals.length} of ${a.approvalsRequired}` },
                {
                  header: 'Action',
                  cell: (a) =>
                    a.state === 'active' ? (
                      <button
                        type="button"
                        disabled={end.busy}
                        onClick={() =>
                          end.run(async () => {
                            await need(
                              api.POST('/api/v1/pim/activations/{id}/revoke', {
                                params: { path: { id: a.id } },
                                body: { reason: 'ended from the portal' },
                              }),
                            );
                            mine.reload();
                            return `${a.target} ended.`;
                          })
                        }
                      >
                        End now<span className="visually-hidden"> {a.target}</span>
                      </button>
                    ) : a.state === 'requested' || a.state === 'approved' ? (
                      <button
                        type="button"
                        className="secondary"
                        disabled={end.busy}
                        onClick={() =>
                          end.run(async () => {
                            await need(
                              api.POST('/api/v1/pim/activations/{id}/cancel', {
                                params: { path: { id: a.id } },
                                body: {},
                              }),
                            );
                            mine.reload();
                            return 'Request withdrawn.';
                          })
                        }
                      >
                        Withdraw<span className="visually-hidden"> request for {a.target}</span>
                      </button>
                    ) : null,
                },
              ]}
            />
          )}
        </LoadState>
      </section>
    </>
  );
}

type Eligibility = Awaited<ReturnType<typeof loadEligible>>['items'][number];
const loadEligible = () => need(api.GET('/api/v1/pim/eligible'));

function RequestForm({ eligibility: e, onDone }: { eligibility: Eligibility; onDone: () => void }) {
  const choices = DURATIONS.filter((d) => d <= e.maxDuration);
  if (!choices.includes(e.maxDuration)) choices.push(e.maxDuration);
  const [duration, setDuration] = useState(choices[choices.length - 1] ?? e.maxDuration);
  const [reason, setReason] = useState('');
  const [ticket, setTicket] = useState('');
  const action = useAction();
  return (
    <Form
      label={`Request ${e.target}`}
      onSubmit={() =>
        action.run(async () => {
          const a = await need(
            api.POST('/api/v1/pim/activations', {
              body: {
                account: e.accountId,
                role: e.roleName,
                durationSeconds: duration,
                ...(reason ? { justification: reason } : {}),
                ...(ticket ? { ticket } : {}),
              },
            }),
          );
          setReason('');
          setTicket('');
          onDone();
          return a.state === 'active'
            ? `${a.target} is active.`
            : `Requested ${a.target}: waiting for approval.`;
        })
      }
    >
      <h3>
        {e.roleName} in {e.accountId}
      </h3>
      <p className="muted">
        Up to {label(e.maxDuration)}
        {e.approvalsRequired > 0
          ? `; ${e.approvalsRequired} approval${e.approvalsRequired > 1 ? 's' : ''} from ${e.approvers.map((a) => a.name).join(', ')}`
          : '; no approval needed'}
        {e.requireMfa ? '; needs MFA' : ''}.
      </p>
      <div className="row">
        <Field label="Duration">
          {(id) => (
            <select id={id} value={duration} onChange={(ev) => setDuration(Number(ev.target.value))}>
              {choices.map((d) => (
                <option key={d} value={d}>
                  {label(d)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label={e.requireJustification ? 'Reason (required)' : 'Reason'}>
          {(id) => (
            <input
              id={id}
              value={reason}
              required={e.requireJustification}
              maxLength={1000}
              onChange={(ev) => setReason(ev.target.value)}
              autoComplete="off"
            />
          )}
        </Field>
        {e.requireTicket ? (
          <Field label="Ticket (required)">
            {(id) => (
              <input
                id={id}
                value={ticket}
                required
                maxLength={128}
                onChange={(ev) => setTicket(ev.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
        ) : null}
      </div>
      <button type="submit" disabled={action.busy}>
        Request {e.roleName}
      </button>
      <Message message={action.message} />
    </Form>
  );
}
