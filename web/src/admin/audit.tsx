import { useState } from 'react';
import { api, need } from '../api/client.js';
import { Field, Form, LoadState, Message, PageTitle, Table, useAction, useLoad } from '../ui.js';

/** The audit trail: search by type and subject, export what is shown, verify the ledger. */
export function Audit() {
  const [type, setType] = useState('');
  const [subject, setSubject] = useState('');
  const [query, setQuery] = useState<{ type?: string; subject?: string }>({});
  const events = useLoad(
    () => need(api.GET('/api/v1/audit/events', { params: { query: { ...query, last: 100 } } })),
    [query.type, query.subject],
  );
  const verify = useAction();
  const exportUrl = () => {
    const blob = new Blob([`${(events.data?.items ?? []).map((e) => JSON.stringify(e)).join('\n')}\n`], {
      type: 'application/x-ndjson',
    });
    return URL.createObjectURL(blob);
  };
  return (
    <>
      <PageTitle>Audit</PageTitle>
      <Form
        label="Search the audit trail"
        onSubmit={() => setQuery({ ...(type ? { type } : {}), ...(subject ? { subject } : {}) })}
      >
        <div className="row">
          <Field label="Event type" hint="e.g. pim.activation.approved">
            {(id, hint) => (
              <input
                id={id}
                value={type}
                aria-describedby={hint}
                onChange={(e) => setType(e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
          <Field label="Subject" hint="a user name, target or id">
            {(id, hint) => (
              <input
                id={id}
                value={subject}
                aria-describedby={hint}
                onChange={(e) => setSubject(e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
        </div>
        <div className="actions">
          <button type="submit">Search</button>
          <button
            type="button"
            className="secondary"
            onClick={() => {
              const a = document.createElement('a');
              a.href = exportUrl();
              a.download = 'ferry-audit.ndjson';
              a.click();
            }}
          >
            Export shown events
          </button>
          <button
            type="button"
            className="secondary"
            disabled={verify.busy}
            onClick={() =>
              verify.run(async () => {
                const r = await need(api.GET('/api/v1/audit/verify'));
                if (!r.ok)
                  throw new Error(`The ledger does NOT verify: first bad leaf ${JSON.stringify(r.firstBad)}`);
                return `The ledger verifies: ${r.events} events, tree size ${r.treeSize}, ${r.headsChecked} signed heads checked, ${r.unsealed} not sealed yet.`;
              })
            }
          >
            Verify the ledger
          </button>
        </div>
      </Form>
      <Message message={verify.message} />
      <LoadState loaded={events}>
        {(data) => (
          <Table
            caption={`The last ${data.items.length} matching events, newest last`}
            rows={data.items}
            rowKey={(e) => e.id}
            columns={[
              { header: 'Time', cell: (e) => e.time },
              { header: 'Type', cell: (e) => <code>{e.type}</code> },
              {
                header: 'Actor',
                cell: (e) =>
                  String((e.actor as { name?: string }).name ?? (e.actor as { type?: string }).type ?? ''),
              },
              { header: 'Subject', cell: (e) => e.subject ?? '' },
              { header: 'Outcome', cell: (e) => e.outcome },
            ]}
          />
        )}
      </LoadState>
    </>
  );
}
