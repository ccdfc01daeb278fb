import { useState } from 'react';
import { api, need } from '../api/client.js';
import { Field, LoadState, Message, PageTitle, useAction, useLoad } from '../ui.js';

type Activation = Awaited<ReturnType<typeof loadPending>>['items'][number];
const loadPending = () => need(api.GET('/api/v1/pim/activations', { params: { query: { pending: true } } }));

/** Requests waiting for the signed-in person's answer (the webhook's links open the same request). */
export function Approvals({ title = 'Approvals' }: { title?: string }) {
  const pending = useLoad(loadPending, [], 5000);
  // The outcome is shown above the list: an answered request leaves it.
  const action = useAction();
  return (
    <>
      <PageTitle>{title}</PageTitle>
      <Message message={action.message} />
      <LoadState loaded={pending}>
        {(data) =>
          data.items.length === 0 ? (
            <p className="muted">No request is waiting for you.</p>
          ) : (
            <ul className="cards" aria-label="Requests waiting for you">
              {data.items.map((a) => (
                <li key={a.id} className="card">
                  <Answer activation={a} action={action} onDone={pending.reload} />
                </li>
              ))}
            </ul>
          )
        }
      </LoadState>
    </>
  );
}

function Answer({
  activation: a,
  action,
  onDone,
}: {
  activation: Activation;
  action: ReturnType<typeof useAction>;
  onDone: () => void;
}) {
  const [reason, setReason] = useState('');
  const answer = (verb: 'approve' | 'deny') =>
    action.run(async () => {
      const after = await need(
        api.POST(`/api/v1/pim/activations/{id}/${verb}`, {
          params: { path: { id: a.id } },
          body: reason ? { reason } : {},
        }),
      );
      onDone();
      return verb === 'approve' ? `Approved: ${a.target} is now ${after.state}.` : `Denied ${a.target}.`;
    });
  return (
    <>
      <h2 className="h3">
        {a.userName} requests {a.target}
      </h2>
      <dl className="facts">
        <dt>For</dt>
        <dd>{Math.round(a.durationSeconds / 60)} minutes</dd>
        <dt>Reason</dt>
        <dd>{a.justification ?? '—'}</dd>
        <dt>Ticket</dt>
        <dd>{a.ticket ?? '—'}</dd>
        <dt>Approvals</dt>
        <dd>
          {a.approvals.length} of {a.approvalsRequired}
        </dd>
        <dt>Answer by</dt>
        <dd>{new Date(a.answerBy).toLocaleString()}</dd>
      </dl>
      <Field label="Your reason (optional)">
        {(id) => (
          <input
            id={id}
            value={reason}
            maxLength={1000}
            onChange={(e) => setReason(e.target.value)}
            autoComplete="off"
          />
        )}
      </Field>
      <div className="actions">
        <button type="button" disabled={action.busy} onClick={() => answer('approve')}>
          Approve
          <span className="visually-hidden">
            {' '}
            {a.userName}’s request for {a.target}
          </span>
        </button>
        <button type="button" className="danger" disabled={action.busy} onClick={() => answer('deny')}>
          Deny
          <span className="visually-hidden">
            {' '}
            {a.userName}’s request for {a.target}
          </span>
        </button>
      </div>
    </>
  );
}
