import { useState } from 'react';
import { Field, Form, LoadState, PageTitle, Table, useLoad, useLocation } from '../ui.js';

type Row = Record<string, unknown>;
const show = (v: unknown): string => {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.map(show).join('; ');
  if (typeof v === 'object') {
    const o = v as Row;
    return String(o.message ?? o.name ?? o.target ?? o.userName ?? JSON.stringify(v));
  }
  return String(v);
};

async function getItems(path: string): Promise<Row[]> {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  const body = (await res.json().catch(() => ({}))) as { items?: Row[]; detail?: string; title?: string };
  if (!res.ok) throw new Error(body.detail ?? body.title ?? `HTTP ${res.status}`);
  return body.items ?? [];
}

function Answer({ path, caption }: { path: string; caption: string }) {
  const loaded = useLoad(() => getItems(path), [path]);
  return (
    <LoadState loaded={loaded}>
      {(rows) => {
        const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))]
          .filter((k) => !/Id$|^id$/.test(k))
          .slice(0, 5);
        return (
          <Table
            caption={caption}
            rows={rows}
            rowKey={(r) => JSON.stringify(r)}
            columns={keys.map((k) => ({ header: k, cell: (r: Row) => show(r[k]) }))}
          />
        );
      }}
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
