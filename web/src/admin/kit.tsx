import { type ReactNode, useEffect, useRef, useState } from 'react';
import { Field, Form, Message, useAction } from '../ui.js';
import './admin.css';

/** "a, b\nc" → ['a', 'b', 'c'] (lists typed into one box: groups, URLs, logins). */
export const listOf = (text: string): string[] =>
  text
    .split(/[\n,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** 3600 → "1 h", 5400 → "1 h 30 min", 900 → "15 min". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  const min = Math.round(seconds / 60);
  if (min < 60) return `${min} min`;
  return min % 60 === 0 ? `${min / 60} h` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** A text input in a labelled field; `required` and the hint are announced with it. */
export function TextField({
  label,
  value,
  onChange,
  hint,
  required,
  type = 'text',
  multiline,
  disabled,
  placeholder,
  autoComplete = 'off',
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  hint?: string;
  required?: boolean;
  type?: 'text' | 'number' | 'url' | 'password';
  multiline?: boolean;
  disabled?: boolean;
  placeholder?: string;
  autoComplete?: string;
}) {
  return (
    <Field label={label} {...(hint ? { hint } : {})}>
      {(id, hintId) =>
        multiline ? (
          <textarea
            id={id}
            value={value}
            required={required}
            disabled={disabled}
            aria-describedby={hintId}
            placeholder={placeholder}
            rows={4}
            onChange={(e) => onChange(e.target.value)}
          />
        ) : (
          <input
            id={id}
            type={type}
            value={value}
            required={required}
            disabled={disabled}
            aria-describedby={hintId}
            placeholder={placeholder}
            autoComplete={autoComplete}
            onChange={(e) => onChange(e.target.value)}
          />
        )
      }
    </Field>
  );
}

export function Check({
  label,
  checked,
  onChange,
  hint,
}: {
  label: string;
  checked: boolean;
  onChange: (v: boolean) => void;
  hint?: string;
}) {
  return (
    <div className="check">
      <label>
        <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} /> {label}
      </label>
      {hint ? <p className="hint">{hint}</p> : null}
    </div>
  );
}

export function Choice<T extends string>({
  label,
  value,
  onChange,
  options,
  hint,
  required,
}: {
  label: string;
  value: T;
  onChange: (v: T) => void;
  options: Array<[value: T, text: string]>;
  hint?: string;
  required?: boolean;
}) {
  return (
    <Field label={label} {...(hint ? { hint } : {})}>
      {(id, hintId) => (
        <select
          id={id}
          value={value}
          required={required}
          aria-describedby={hintId}
          onChange={(e) => onChange(e.target.value as T)}
        >
          {options.map(([v, text]) => (
            <option key={v} value={v}>
              {text}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

/**
 * A change that cannot be undone asks twice: the first press shows what will happen and a confirm
 * button (focused, so Enter confirms and Tab reaches Cancel); no window.confirm, which tests and
 * screen readers handle poorly.
 */
export function ConfirmButton({
  label,
  what,
  question,
  onConfirm,
  busy,
  danger = true,
}: {
  /** the button's visible words ("Remove") */
  label: string;
  /** what it acts on, for screen readers ("the eligibility of Developers for …") */
  what: string;
  /** the question shown before confirming */
  question: string;
  onConfirm: () => void;
  busy?: boolean;
  danger?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  // After Cancel, focus goes back to the button that asked (not to the top of the page).
  const first = useRef<HTMLButtonElement>(null);
  const asked = useRef(false);
  useEffect(() => {
    if (asking) asked.current = true;
    else if (asked.current) first.current?.focus();
  }, [asking]);
  if (!asking)
    return (
      <button ref={first} type="button" className="secondary" disabled={busy} onClick={() => setAsking(true)}>
        {label}
        <span className="visually-hidden"> {what}</span>
      </button>
    );
  return (
    <span className="confirm">
      <span className="confirm-question">{question}</span>
      <button
        type="button"
        className={danger ? 'danger' : ''}
        disabled={busy}
        // biome-ignore lint/a11y/noAutofocus: the confirmation replaces the button that had focus
        autoFocus
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        Yes, {label.toLowerCase()}
        <span className="visually-hidden"> {what}</span>
      </button>
      <button type="button" className="secondary" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

/**
 * A form in its own section with a heading, a submit button and the outcome (the server's problem
 * detail as it is, or what was done). `check` finds obvious mistakes before anything is sent.
 */
export function FormSection({
  title,
  submit,
  onSubmit,
  check,
  children,
  onCancel,
  id,
}: {
  title: string;
  submit: string;
  /** returns the success message */
  onSubmit: () => Promise<string | undefined>;
  /** a message for an obvious mistake, or null */
  check?: () => string | null;
  children: ReactNode;
  onCancel?: () => void;
  id?: string;
}) {
  const action = useAction();
  const [mistake, setMistake] = useState<string | null>(null);
  const headingId = `${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-heading`;
  return (
    <section aria-labelledby={headingId} className="form-section">
      <h2 id={headingId}>{title}</h2>
      <Form
        label={title}
        onSubmit={() => {
          const m = check?.() ?? null;
          setMistake(m);
          if (m) return;
          return action.run(onSubmit);
        }}
      >
        {children}
        <div className="actions">
          <button type="submit" disabled={action.busy}>
            {submit}
          </button>
          {onCancel ? (
            <button type="button" className="secondary" onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
        {mistake ? (
          <p className="error" role="alert">
            {mistake}
          </p>
        ) : (
          <Message message={action.message} />
        )}
      </Form>
    </section>
  );
}

/** A page's note that changes need a permission this person lacks (so the missing forms are explained). */
export function ReadOnlyNote({ permission }: { permission: string }) {
  return (
    <p className="muted">
      You can read this page; changing it needs <code>{permission}</code>, which your admin roles do not give.
    </p>
  );
}
