/**
 * What a terminal obeys: every C0 control but LF, DEL, C1, the bidirectional controls and the
 * Unicode line and paragraph separators. Any of these in printed output lets text act instead of
 * being read. Written apart from src/cli/terminal-text.ts so the tests do not grade their own answer.
 */
const OBEYED_RANGES: Array<[number, number]> = [
  [0x00, 0x09],
  [0x0b, 0x1f],
  [0x7f, 0x9f],
  [0x61c, 0x61c],
  [0x200e, 0x200f],
  [0x202a, 0x202e],
  [0x2066, 0x2069],
  [0x2028, 0x2029],
];

/** The code points (as U+XXXX) in `text` that a terminal would obey rather than show. */
export function controlsIn(text: string): string[] {
  const found: string[] = [];
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (OBEYED_RANGES.some(([lo, hi]) => code >= lo && code <= hi))
      found.push(`U+${code.toString(16).padStart(4, '0')}`);
  }
  return found;
}
