import {
  type AnchorHTMLAttributes,
  type FormEvent,
  type ReactNode,
  useCallback,
  useEffect,
  useId,
  useState,
  useSyncExternalStore,
} from 'react';

// ---- Routing: the History API, nothing more ---------------------------------------------------

const listeners = new Set<() => void>();
const subscribe = (fn: () => void) => {
  listeners.add(fn);
  window.addEventListener('popstate', fn);
  return () => {
    listeners.delete(fn);
    window.removeEventListener('popstate', fn);
  };
};
export function navigate(to: string): void {
  window.history.pushState(null, '', to);
  for (const fn of listeners) fn();
  window.scrollTo(0, 0);
}
export const useLocation = (): { path: string; search: URLSearchParams } => {
  const href = useSyncExternalStore(subscribe, () => window.location.pathname + window.location.search);
  const url = new URL(href, window.location.origin);
  return { path: url.pathname.replace(/\/+$/, '') || '/', search: url.searchParams };
};

/** An in-app link: a real <a> (keyboard, middle-click, copy link) that navigates without a reload. */
export function Link({
  href,
  children,
  ...rest
}: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const { path } = useLocation();
  const target = href.split('?')[0]!;
  const current = path === target || (target !== '/' && target !== '/admin' && path.startsWith(`${target}/`));
  return (
    <a
      {...rest}
      href={href}
      aria-current={current ? 'page' : undefined}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}

// ---- Loading data ------------------------------------------------------------------------------

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now, again on reload(), and every `everyMs` (live status) while the page is open. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = [], everyMs?: number): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names what the load depends on
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (err: Error) => live && setState((s) => ({ data: s.data, error: err.message, loading: false })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  useEffect(() => {
    if (!everyMs) return;
    const t = setInterval(() => setTick((n) => n + 1), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

/** An action's outcome, announced to screen readers. */
export function useAction(): {
  busy: boolean;
  message: { kind: 'ok' | 'error'; text: string } | null;
  run: (fn: () => Promise<string | undefined>) => Promise<void>;
} {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const run = async (fn: () => Promise<string | undefined>) => {
    setBusy(true);
    setMessage(null);
    try {
      const text = await fn();
      if (text) setMessage({ kind: 'ok', text });
    } catch (err) {
      setMessage({ kind: 'error', text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };
  return { busy, message, run };
}

export function Message({ message }: { message: { kind: 'ok' | 'error'; text: string } | null }) {
  if (!message) return null;
  return message.kind === 'error' ? (
    <p className="error" role="alert">
      {message.text}
    </p>
  ) : (
    <p className="notice" role="status">
      {message.text}
    </p>
  );
}

export function LoadState<T>({
  loaded,
  empty,
  children,
}: {
  loaded: Loaded<T>;
  empty?: (data: T) => boolean;
  children: (data: T) => ReactNode;
}) {
  if (loaded.error && !loaded.data)
    return (
      <p className="error" role="alert">
        {loaded.error}
      </p>
    );
  if (!loaded.data) return <p className="muted">Loading…</p>;
  if (empty?.(loaded.data)) return <p className="muted">Nothing here.</p>;
  return <>{children(loaded.data)}</>;
}

// ---- Forms and tables --------------------------------------------------------------------------

export function Field({
  label,
  hint,
  children,
}: {
  label: string;
  hint?: string;
  children: (id: string, describedBy: string | undefined) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id, hintId)}
      {hint ? (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function Form({
  onSubmit,
  children,
  label,
}: {
  onSubmit: () => void | Promise<void>;
  children: ReactNode;
  label: string;
}) {
  return (
    <form
      aria-label={label}
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        void onSubmit();
      }}
    >
      {children}
    </form>
  );
}

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
}

export function Table<T>({
  caption,
  rows,
  columns,
  rowKey,
}: {
  caption: string;
  rows: T[];
  columns: Column<T>[];
  rowKey: (row: T) => string;
}) {
  return (
    // A wide table scrolls sideways: keyboard users must be able to focus it to scroll (WCAG 2.1.1).
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region is focusable by design (axe)
    <section className="table-wrap" aria-label={caption} tabIndex={0}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c.header}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} className="muted">
                None.
              </td>
            </tr>
          ) : (
            rows.map((r) => (
              <tr key={rowKey(r)}>
                {columns.map((c) => (
                  <td key={c.header} data-label={c.header}>
                    {c.cell(r)}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </section>
  );
}

/** A command or snippet with a Copy button (the clipboard needs a secure context; selecting works anywhere). */
export function CopyBlock({ label, text }: { label: string; text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="copy">
      <span className="copy-label">{label}</span>
      <pre>
        <code>{text}</code>
      </pre>
      <button
        type="button"
        className="secondary"
        onClick={() => {
          navigator.clipboard?.writeText(text).then(
            () => setCopied(true),
            () => setCopied(false),
          );
        }}
      >
        {copied ? 'Copied' : `Copy ${label.toLowerCase()}`}
      </button>
    </div>
  );
}

export function FilterBox({
  value,
  onChange,
  label,
}: {
  value: string;
  onChange: (v: string) => void;
  label: string;
}) {
  return (
    <Field label={label}>
      {(id) => (
        <input
          id={id}
          type="search"
          value={value}
          onChange={(e) => onChange(e.target.value)}
          autoComplete="off"
        />
      )}
    </Field>
  );
}

export const matches = (filter: string, ...texts: Array<string | null | undefined>): boolean => {
  const f = filter.trim().toLowerCase();
  return f === '' || texts.some((t) => (t ?? '').toLowerCase().includes(f));
};

/** "42 min", "3 h 5 min" until `iso` (or "ended"). */
export function timeLeft(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return '—';
  const ms = new Date(iso).getTime() - nowMs;
  if (ms <= 0) return 'ended';
  const min = Math.ceil(ms / 60_000);
  return min < 60 ? `${min} min` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

export function PageTitle({ children }: { children: string }) {
  useEffect(() => {
    document.title = `${children} · Ferry`;
  }, [children]);
  return <h1 tabIndex={-1}>{children}</h1>;
}
