import { useState } from 'react';
import { api, need } from '../api/client.js';
import { can, useSession } from '../session.js';
import { LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';
import { Check, ConfirmButton, FormSection, listOf, ReadOnlyNote, TextField } from './kit.js';

/** Access reviews: start a campaign, open one, decide its items (as a reviewer), close it. */
export function Reviews() {
  const session = useSession();
  const write = can(session, 'reviews:write');
  // Every campaign (reviews:read), not only those this person reviews.
  const list = useLoad(() => need(api.GET('/api/v1/reviews', { params: { query: { all: true } } })));
  const action = useAction();
  const [open, setOpen] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [groups, setGroups] = useState('');
  const [eligibilities, setEligibilities] = useState(false);
  const [reviewerGroups, setReviewerGroups] = useState('');
  const [reviewerUsers, setReviewerUsers] = useState('');
  const [deadline, setDeadline] = useState('14d');
  const [removeUnreviewed, setRemoveUnreviewed] = useState(false);
  type Campaign = NonNullable<typeof list.data>['items'][number];
  const campaign = list.data?.items.find((c) => c.id === open) ?? null;
  return (
    <>
      <PageTitle>Access reviews</PageTitle>
      {write ? null : <ReadOnlyNote permission="reviews:write" />}
      <Message message={action.message} />
      <LoadState loaded={list}>
        {(data) => (
          <Table
            caption="Access reviews"
            rows={data.items}
            rowKey={(c) => c.id}
            columns={[
              { header: 'Name', cell: (c) => c.name },
              { header: 'State', cell: (c) => c.state },
              { header: 'Deadline', cell: (c) => c.deadline },
              { header: 'Reviewers', cell: (c) => c.reviewers.map((r) => r.name).join(', ') },
              {
                header: 'Progress',
                cell: (c) =>
                  `${c.progress.approved} kept, ${c.progress.denied} removed, ${c.progress.unreviewed} open of ${c.progress.total}`,
              },
              {
                header: 'Actions',
                cell: (c: Campaign) => (
                  <div className="actions">
                    <button
                      type="button"
                      className="secondary"
                      aria-pressed={open === c.id}
                      onClick={() => setOpen(open === c.id ? null : c.id)}
                    >
                      Items<span className="visually-hidden"> of {c.name}</span>
                    </button>
                    {write && c.state === 'open' ? (
                      <ConfirmButton
                        label="Close"
                        what={c.name}
                        question={`Close ${c.name} now and apply its results${c.removeUnreviewed ? ' (unreviewed access is removed)' : ''}?`}
                        busy={action.busy}
                        onConfirm={() =>
                          action.run(async () => {
                            await need(
                              api.POST('/api/v1/reviews/{id}/close', { params: { path: { id: c.id } } }),
                            );
                            list.reload();
                            return `Closed ${c.name}.`;
                          })
                        }
                      />
                    ) : null}
                  </div>
                ),
              },
            ]}
          />
        )}
      </LoadState>
      {campaign ? (
        <Items
          id={campaign.id}
          name={campaign.name}
          open={campaign.state === 'open'}
          onChange={list.reload}
        />
      ) : null}
      {write ? (
        <FormSection
          title="Start a review"
          submit="Start review"
          check={() => {
            if (!name.trim()) return 'Name the review.';
            if (listOf(groups).length === 0 && !eligibilities)
              return 'Review some groups, or the eligibilities.';
            if (listOf(reviewerGroups).length + listOf(reviewerUsers).length === 0) return 'Name a reviewer.';
            if (!/^(\d{1,4}[mhd]|\d{4}-\d\d-\d\d.*)$/.test(deadline.trim()))
              return 'The deadline is a duration such as 14d, or a date such as 2026-12-31.';
            return null;
          }}
          onSubmit={async () => {
            const c = await need(
              api.POST('/api/v1/reviews', {
                body: {
                  name: name.trim(),
                  groups: listOf(groups),
                  eligibilities,
                  reviewerGroups: listOf(reviewerGroups),
                  reviewerUsers: listOf(reviewerUsers),
                  deadline: deadline.trim(),
                  removeUnreviewed,
                },
              }),
            );
            list.reload();
            setName('');
            setOpen(c.id);
            return `Started ${c.name}: ${c.progress.total} items to review.`;
          }}
        >
          <div className="row">
            <TextField label="Review name" value={name} required onChange={setName} />
            <TextField
              label="Deadline"
              value={deadline}
              required
              hint="14d, 36h, or an ISO date"
              onChange={setDeadline}
            />
          </div>
          <div className="row">
            <TextField
              label="Groups to review"
              value={groups}
              hint="comma-separated: each member is an item"
              onChange={setGroups}
            />
            <TextField
              label="Reviewer groups"
              value={reviewerGroups}
              hint="comma-separated"
              onChange={setReviewerGroups}
            />
            <TextField
              label="Reviewer users"
              value={reviewerUsers}
              hint="comma-separated"
              onChange={setReviewerUsers}
            />
          </div>
          <div className="row">
            <Check label="Review eligibilities too" checked={eligibilities} onChange={setEligibilities} />
            <Check
              label="Remove what nobody reviewed by the deadline"
              checked={removeUnreviewed}
              onChange={setRemoveUnreviewed}
            />
          </div>
        </FormSection>
      ) : null}
    </>
  );
}

function Items({
  id,
  name,
  open,
  onChange,
}: {
  id: string;
  name: string;
  open: boolean;
  onChange: () => void;
}) {
  const items = useLoad(
    () => need(api.GET('/api/v1/reviews/{id}/items', { params: { path: { id } } })),
    [id],
  );
  const action = useAction();
  const [reason, setReason] = useState('');
  const decide = (item: string, label: string, decision: 'approve' | 'deny') =>
    action.run(async () => {
      await need(
        api.POST('/api/v1/reviews/{id}/items/{item}/decision', {
          params: { path: { id, item } },
          body: { decision, ...(reason.trim() ? { reason: reason.trim() } : {}) },
        }),
      );
      items.reload();
      onChange();
      return `${decision === 'approve' ? 'Kept' : 'Marked for removal'}: ${label}.`;
    });
  return (
    <section aria-labelledby="items-heading">
      <h2 id="items-heading">Items of {name}</h2>
      {open ? (
        <TextField
          label="Reason for your decisions"
          value={reason}
          hint="optional; only reviewers may decide, and never on their own access"
          onChange={setReason}
        />
      ) : null}
      <Message message={action.message} />
      <LoadState loaded={items}>
        {(data) => (
          <Table
            caption={`What ${name} reviews`}
            rows={data.items}
            rowKey={(i) => i.id}
            columns={[
              { header: 'Access', cell: (i) => i.label },
              { header: 'Kind', cell: (i) => i.kind },
              {
                header: 'Decision',
                cell: (i) =>
                  i.decision
                    ? `${i.decision} by ${i.decidedBy ?? '?'}${i.reason ? `: ${i.reason}` : ''}`
                    : 'open',
              },
              { header: 'Outcome', cell: (i) => i.outcome ?? '—' },
              {
                header: 'Actions',
                cell: (i) =>
                  open ? (
                    <div className="actions">
                      <button
                        type="button"
                        className="secondary"
                        disabled={action.busy}
                        onClick={() => decide(i.id, i.label, 'approve')}
                      >
                        Keep<span className="visually-hidden"> {i.label}</span>
                      </button>
                      <button
                        type="button"
                        className="secondary"
                        disabled={action.busy}
                        onClick={() => decide(i.id, i.label, 'deny')}
                      >
                        Remove<span className="visually-hidden"> {i.label}</span>
                      </button>
                    </div>
                  ) : null,
              },
            ]}
          />
        )}
      </LoadState>
    </section>
  );
}
