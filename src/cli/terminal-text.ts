/**
 * Text from elsewhere (user names typed at sign-in, display names, reasons, SCIM attributes, audit
 * event fields, problem details) made inert before it reaches a terminal. A terminal obeys control
 * characters wherever they appear: ESC and CSI sequences clear the screen, move the cursor, set the
 * window title or (OSC 52) the clipboard; CR and LF inside a field forge a line that looks like
 * Ferry's own; bidirectional overrides (Trojan Source, CVE-2021-42574) make text read differently
 * from what it is. Each such character is shown as a visible escape instead, so what is printed is
 * what is stored. Backslashes are left as they are: `CONTOSO\jane` must stay readable.
 */

/**
 * C0 (U+0000–U+001F), DEL, C1 (U+0080–U+009F; 8-bit CSI is U+009B), the bidirectional controls
 * (ALM, LRM, RLM, LRE…RLO, LRI…PDI) and the Unicode line and paragraph separators.
 */
export function isTerminalControl(code: number): boolean {
  return (
    code <= 0x1f ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x61c ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069) ||
    code === 0x2028 ||
    code === 0x2029
  );
}

const NAMED: Record<number, string> = { 10: '\\n', 13: '\\r', 9: '\\t', 27: '\\e' };

function hex(code: number): string {
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Replaces each terminal control in `value` for which `escape` says so; unchanged text is returned as is. */
function replaceControls(value: string, show: (code: number) => string | null): string {
  let result = '';
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (!isTerminalControl(code)) continue;
    const shown = show(code);
    if (shown === null) continue;
    result += value.slice(from, i) + shown;
    from = i + 1;
  }
  return from === 0 ? value : result + value.slice(from);
}

const visible = (code: number) => NAMED[code] ?? hex(code);

/** One field of untrusted text, every control character (LF and TAB included) shown as an escape. */
export function escapeControl(value: string): string {
  return replaceControls(value, visible);
}

/** Text whose lines are Ferry's own: LF and TAB kept, every other control character escaped. */
export function escapeControlKeepLines(value: string): string {
  return replaceControls(value, (code) => (code === 0x0a || code === 0x09 ? null : visible(code)));
}

/**
 * JSON whose every control character (C1, DEL, bidi and separators too, which JSON.stringify leaves
 * raw) is a \\u escape: it parses to the same value, and a terminal shows it inertly.
 */
export function inertJson(value: unknown, indent?: number): string {
  // Inside strings JSON.stringify already escapes C0; a raw LF is indentation, so it stays.
  return replaceControls(JSON.stringify(value, null, indent) ?? 'null', (code) =>
    code <= 0x1f ? null : `\\u${code.toString(16).padStart(4, '0')}`,
  );
}
