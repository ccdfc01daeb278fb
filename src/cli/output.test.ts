import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { controlsIn } from '../../test/support/terminal.js';
import { json, lines, t, table } from './output.js';
import { escapeControl, escapeControlKeepLines, inertJson } from './terminal-text.js';

describe('escapeControl: one field of untrusted text', () => {
  it.each([
    ['plain text is unchanged', 'Jane Doe', 'Jane Doe'],
    ['accents and emoji are unchanged', 'Zoë 👩‍💻 Ångström', 'Zoë 👩‍💻 Ångström'],
    ['a Windows account keeps its backslash', 'CONTOSO\\jane', 'CONTOSO\\jane'],
    ['clear screen (ESC [2J ESC [H)', 'x\u001b[2J\u001b[H', 'x\\e[2J\\e[H'],
    ['window title (OSC 0 … BEL)', '\u001b]0;pwned\u0007', '\\e]0;pwned\\x07'],
    ['clipboard write (OSC 52 … ST)', '\u001b]52;c;cm0gLXJm\u001b\\', '\\e]52;c;cm0gLXJm\\e\\'],
    [
      'a forged line (LF)',
      'bob\n2026-01-01T00:00:00Z  #1  user.deleted',
      'bob\\n2026-01-01T00:00:00Z  #1  user.deleted',
    ],
    ['an overwritten line (CR)', 'bob\rroot', 'bob\\rroot'],
    ['CRLF', 'a\r\nb', 'a\\r\\nb'],
    ['TAB', 'a\tb', 'a\\tb'],
    ['NUL and backspace', 'a\u0000\bb', 'a\\x00\\x08b'],
    ['DEL', 'a\u007fb', 'a\\x7fb'],
    ['8-bit CSI (C1)', 'a\u009b2Jb', 'a\\x9b2Jb'],
    ['8-bit OSC and ST (C1)', '\u009d0;t\u009c', '\\x9d0;t\\x9c'],
    ['right-to-left override (Trojan Source)', 'admin\u202egnp.exe', 'admin\\u202egnp.exe'],
    ['isolates and marks', '\u2066a\u2069\u200e\u200f\u061c', '\\u2066a\\u2069\\u200e\\u200f\\u061c'],
    ['line and paragraph separators', 'a\u2028b\u2029c', 'a\\u2028b\\u2029c'],
  ])('%s', (_name, input, expected) => {
    expect(escapeControl(input)).toBe(expected);
    expect(controlsIn(escapeControl(input))).toEqual([]);
  });

  it('escapes every code point a terminal obeys, and nothing printable', () => {
    const wrong: string[] = [];
    for (let code = 0; code <= 0x3000; code++) {
      const ch = String.fromCharCode(code);
      const escaped = escapeControl(ch);
      const shouldEscape = ch === '\n' || controlsIn(ch).length > 0;
      if ((escaped !== ch) !== shouldEscape || controlsIn(escaped).length > 0 || escaped.includes('\n'))
        wrong.push(`U+${code.toString(16)}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('escapeControlKeepLines and inertJson', () => {
  it('keeps line breaks of a whole text and escapes the rest', () => {
    expect(escapeControlKeepLines('ssh-ed25519 AAAA ca\n\u001b[2Jx\r\n')).toBe(
      'ssh-ed25519 AAAA ca\n\\e[2Jx\\r\n',
    );
  });

  it('writes JSON that parses to the same value with no raw control character', () => {
    const value = { name: 'a\u001b[2J\u009b\u202e\u2028\u007f\n', n: 1, list: ['x\ty'] };
    for (const indent of [undefined, 2]) {
      const text = inertJson(value, indent);
      expect(controlsIn(text)).toEqual([]);
      expect(JSON.parse(text)).toEqual(value);
    }
  });
});

describe('the output layer', () => {
  it('escapes every value of a template but keeps the command’s own line breaks', () => {
    const name = 'Eve\n2026-01-01  #9  admin.granted\u001b[2J';
    expect(t`created ${name} (${42})\n`.text).toBe(
      'created Eve\\n2026-01-01  #9  admin.granted\\e[2J (42)\n',
    );
    // nested templates and inert parts are not escaped twice
    expect(t`${[t`a ${'x\ny'}\n`, t`b\n`]}${json({ v: '\u009b' })}`.text).toBe('a x\\ny\nb\n{"v":"\\u009b"}');
    expect(t`${null}${undefined}-`.text).toBe('-');
    expect(lines('k1\nk2\u001b\n').text).toBe('k1\nk2\\e\n');
  });

  it('escapes table cells before it measures them, so columns stay aligned and one row stays one line', () => {
    const text = table(
      [
        { userName: 'eve', displayName: 'E\u001b[31mve\nroot  Admin' },
        { userName: 'bob', displayName: 'Bob' },
      ],
      ['userName', 'displayName'],
    ).text;
    expect(text.split('\n')).toEqual([
      'USERNAME  DISPLAYNAME',
      'eve       E\\e[31mve\\nroot  Admin',
      'bob       Bob',
      '',
    ]);
  });

  it('is the only writer: no file of the CLI writes to stdout or stderr by itself', () => {
    const dir = new URL('./', import.meta.url);
    const offenders: string[] = [];
    const files = [
      ...readdirSync(dir)
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'output.ts')
        .map((f) => new URL(f, dir)),
      new URL('../app/main.ts', dir),
    ];
    for (const file of files) {
      const source = readFileSync(file, 'utf8');
      if (/process\.(stdout|stderr)\.write|console\.(log|error|warn|info)/.test(source))
        offenders.push(file.pathname);
    }
    expect(offenders).toEqual([]);
  });
});
