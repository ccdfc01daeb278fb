import { describe, expect, it } from 'vitest';
import {
  escapeAttr,
  escapeText,
  InvalidXml,
  onlyChild,
  parseXml,
  samlId,
  samlInstant,
  truncateToSecond,
} from './xml.js';

describe('escaping', () => {
  it('escapes text and attribute values so they parse back to the same string', () => {
    const value = 'a & b < c > d "e" \'f\'\ttab\nline\r\nend';
    expect(escapeText('a & b < c > d')).toBe('a &amp; b &lt; c &gt; d');
    expect(escapeAttr('"q" & <x>')).toBe('&quot;q&quot; &amp; &lt;x&gt;');
    const doc = parseXml(`<r a="${escapeAttr(value)}"><t>${escapeText(value)}</t></r>`);
    expect(doc.documentElement!.getAttribute('a')).toBe(value);
    expect(onlyChild(doc.documentElement!, '', 't').textContent).toBe(value);
  });

  it('refuses characters XML cannot carry', () => {
    expect(() => escapeText('nul\u0000')).toThrow(InvalidXml);
    expect(() => escapeAttr('bell\u0007')).toThrow(/U\+0007 cannot appear in XML/);
    expect(() => escapeText('\uFFFE')).toThrow(InvalidXml);
    expect(escapeText('emoji 😀 and ü')).toBe('emoji 😀 and ü');
  });
});

describe('ids and instants', () => {
  it('makes 128-bit NCName ids', () => {
    const ids = new Set(Array.from({ length: 100 }, samlId));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^_[0-9a-f]{32}$/);
  });

  it('writes UTC instants in whole seconds', () => {
    expect(samlInstant(new Date('2026-03-02T10:00:00.999Z'))).toBe('2026-03-02T10:00:00Z');
    expect(samlInstant(new Date('2026-03-02T10:00:00+02:00'))).toBe('2026-03-02T08:00:00Z');
    expect(truncateToSecond(new Date('2026-03-02T10:00:00.999Z')).toISOString()).toBe(
      '2026-03-02T10:00:00.000Z',
    );
    expect(() => samlInstant(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('parseXml', () => {
  it('parses a namespaced document', () => {
    const doc = parseXml('<?xml version="1.0" encoding="UTF-8"?><p:a xmlns:p="urn:x"><p:b>1</p:b></p:a>');
    expect(doc.documentElement!.localName).toBe('a');
    expect(onlyChild(doc.documentElement!, 'urn:x', 'b').textContent).toBe('1');
  });

  it('refuses DTDs: external entities (XXE) and entity expansion', () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>';
    expect(() => parseXml(xxe)).toThrow(/document type declaration/);
    const laughs =
      '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>';
    expect(() => parseXml(laughs)).toThrow(InvalidXml);
    expect(() => parseXml('<!doctype r><r/>')).toThrow(InvalidXml);
    expect(() => parseXml('<r>&undefined;</r>')).toThrow(InvalidXml);
  });

  it('refuses several roots, no root, and documents that are not well-formed', () => {
    expect(() => parseXml('<a/><b/>')).toThrow(InvalidXml);
    expect(() => parseXml('<a>')).toThrow(InvalidXml);
    expect(() => parseXml('<a></b>')).toThrow(InvalidXml);
    expect(() => parseXml('just text')).toThrow(InvalidXml);
    expect(() => parseXml('')).toThrow(InvalidXml);
    expect(() => parseXml('<a x="1" x="2"/>')).toThrow(InvalidXml);
  });
});
