import { api, need } from '../api/client.js';
import { Approvals } from '../portal/approvals.js';
import { LoadState, Table, useLoad } from '../ui.js';

/** The approvals queue (requests this admin may answer), and every recent activation. */
export function PimAdmin() {
  const all = useLoad(() => need(api.GET('/api/v1/pim/activations')), [], 10_000);
  return (
    <>
      <Approvals title="Approvals queue" />
      <h2>Your recent activations</h2>
      <LoadState loaded={all}>
        {(data) => (
          <Table
            caption="Activations"
            rows={data.items.slice(0, 50)}
            rowKey={(a) => a.id}
            columns={[
              { header: 'Who', cell: (a) => a.userName },
              { header: 'Target', cell: (a) => a.target },
              { header: 'State', cell: (a) => a.state },
              { header: 'Requested', cell: (a) => a.requestedAt },
              { header: 'Ends', cell: (a) => a.expiresAt ?? '—' },
            ]}
          />
        )}
      </LoadState>
    </>
  );
}
