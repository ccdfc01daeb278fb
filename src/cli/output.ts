import { escapeControl, escapeControlKeepLines, inertJson } from './terminal-text.js';

/**
 * The only way a `ferry` command writes to the terminal. What it writes is `Inert`: built by the
 * `t` template (the command's own words kept, every interpolated value escaped), by `table`, by
 * `json`, or by `lines` for a whole text whose line breaks are meaningful (a public key, a file).
 * A plain string does not type-check, so a command cannot print a display name unescaped; and
 * `out`/`note` escape what is left once more, so even Ferry's own words cannot move the cursor.
 * (A test fails when any file of src/cli/ writes to process.stdout or process.stderr itself.)
 */
export class Inert {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

function piece(value: unknown): string {
  if (value instanceof Inert) return value.text;
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(piece).join('');
  return escapeControl(String(value));
}

/** A template whose literal parts are the command's own text and whose values are escaped. */
export function t(strings: TemplateStringsArray, ...values: unknown[]): Inert {
  let text = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) text += piece(values[i]) + (strings[i + 1] ?? '');
  return new Inert(text);
}

/** A whole text whose line breaks are kept (a public key file, known_hosts); other controls escaped. */
export function lines(text: string): Inert {
  return new Inert(escapeControlKeepLines(text));
}

/** Joins inert parts (each already escaped) with a separator of the command's own. */
export function joinInert(parts: Inert[], separator = ''): Inert {
  return new Inert(parts.map((p) => p.text).join(separator));
}

/** JSON that parses to the same value and shows every control character as a \u escape. */
export function json(value: unknown, indent?: number): Inert {
  return new Inert(inertJson(value, indent));
}

/** Prints rows as an aligned table with a header, the way `kubectl get` does; each cell escaped. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): Inert {
  const cell = (v: unknown) =>
    escapeControl(v === null || v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v));
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return new Inert(`${[line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n')}\n`);
}

let quietOnBrokenPipe = false;

/** Writes to standard output. */
export function out(text: Inert): void {
  if (!quietOnBrokenPipe) {
    // `ferry audit tail -f | head -1`: once the reader is gone there is no one to tell; stop quietly.
    quietOnBrokenPipe = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
  write(process.stdout, text);
}

/** Writes to standard error (progress, hints, errors). */
export function note(text: Inert): void {
  write(process.stderr, text);
}

export function printJson(value: unknown): void {
  out(new Inert(`${inertJson(value, 2)}\n`));
}

function write(stream: NodeJS.WriteStream, text: Inert): void {
  stream.write(escapeControlKeepLines(text.text));
}

/** A one-line progress bar on stderr, drawn only when stderr is a terminal (never in logs or pipes). */
export function progressBar(total: number, stream: NodeJS.WriteStream = process.stderr) {
  let done = 0;
  const tty = stream.isTTY === true;
  return {
    tick(label: string) {
      done = Math.min(total, done + 1);
      if (!tty) return;
      const width = 24;
      const filled = Math.round((width * done) / total);
      // The one carriage return Ferry writes on purpose, to redraw the bar; the label is escaped.
      stream.write(
        `\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} ${escapeControl(label).slice(0, 50).padEnd(50)}`,
      );
    },
    end() {
      if (tty) stream.write('\n');
    },
  };
}
