import { useState } from 'react';
import { Field, Form, LoadState, PageTitle, Table, useLoad, useLocation } from '../ui.js';

/** One answer of GET /api/v1/access/of or /access/who (src/access/reach.ts). */
interface ReachRow {
  target: string;
  userName: string;
  effect: 'allow' | 'step-up' | 'eligible';
  require?: string[];
  maxDuration?: number;
  via: Array<{ kind: 'group' | 'direct' | 'activation' | 'eligibility'; name: string }>;
}

const VIA_LABEL: Record<ReachRow['via'][number]['kind'], string> = {
  group: 'group',
  direct: 'direct assignment',
  activation: 'activation',
  eligibility: 'eligible (PIM)',
};

async function getItems(path: string): Promise<ReachRow[]> {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  const body = (await res.json().catch(() => ({}))) as {
    items?: ReachRow[];
    detail?: string;
    title?: string;
  };
  if (!res.ok) throw new Error(body.detail ?? body.title ?? `HTTP ${res.status}`);
  return body.items ?? [];
}

function Answer({ path, caption }: { path: string; caption: string }) {
  const loaded = useLoad(() => getItems(path), [path]);
  return (
    <LoadState loaded={loaded}>
      {(rows) => (
        <Table
          caption={caption}
          rows={rows}
          rowKey={(r) => `${r.userName} ${r.target}`}
          columns={[
            { header: 'Target', cell: (r: ReachRow) => r.target },
            { header: 'Person', cell: (r: ReachRow) => r.userName },
            {
              header: 'Answer',
              cell: (r: ReachRow) =>
                r.effect === 'step-up' && r.require?.length
                  ? `step-up: requires ${r.require.join(', ')}`
                  : r.effect,
            },
            {
              header: 'Why',
              cell: (r: ReachRow) => r.via.map((v) => `${VIA_LABEL[v.kind]}: ${v.name}`).join('; '),
            },
          ]}
        />
      )}
    </LoadState>
  );
}

/** Who can reach what: for a person every target and why; for a target every person. */
export function WhoCanReach() {
  const { search } = useLocation();
  const [user, setUser] = useState(search.get('user') ?? '');
  const [target, setTarget] = useState(search.get('target') ?? '');
  const [asked, setAsked] = useState<{ user?: string; target?: string }>({
    ...(search.get('user') ? { user: search.get('user')! } : {}),
    ...(search.get('target') ? { target: search.get('target')! } : {}),
  });
  return (
    <>
      <PageTitle>Who can reach what</PageTitle>
      <div className="two">
        <Form label="What can a person reach" onSubmit={() => setAsked({ user })}>
          <Field label="Person (user name)">
            {(id) => (
              <input
                id={id}
                value={user}
                required
                onChange={(e) => setUser(e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
          <button type="submit">Show their access</button>
        </Form>
        <Form label="Who can reach a target" onSubmit={() => setAsked({ target })}>
          <Field label="Target (aws:123456789012/Developer)">
            {(id) => (
              <input
                id={id}
                value={target}
                required
                onChange={(e) => setTarget(e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
          <button type="submit">Show who</button>
        </Form>
      </div>
      {asked.user ? (
        <Answer
          path={`/api/v1/access/of?user=${encodeURIComponent(asked.user)}`}
          caption={`What ${asked.user} can reach, and why`}
        />
      ) : null}
      {asked.target ? (
        <Answer
          path={`/api/v1/access/who?target=${encodeURIComponent(asked.target)}`}
          caption={`Who can reach ${asked.target}`}
        />
      ) : null}
    </>
  );
}
