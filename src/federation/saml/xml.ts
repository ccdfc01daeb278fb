import { randomBytes } from 'node:crypto';
import type { Document, Element } from '@xmldom/xmldom';
import { onFirstUse } from '../../lazy-module.js';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

/** Raised for XML Ferry refuses to read (not well-formed, DTDs, several roots) or can't write. */
export class InvalidXml extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidXml';
  }
}

// Characters XML 1.0 allows at all (https://www.w3.org/TR/xml/#charsets); anything else can't be
// written even as a character reference, so it is refused rather than silently dropped.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the regex is about control characters
const NOT_XML_CHAR = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function assertXmlChars(value: string): void {
  const bad = NOT_XML_CHAR.exec(value);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new InvalidXml(`U+${code} cannot appear in XML`);
  }
}

/**
 * Escapes element text. A carriage return is written as a character reference: written raw, a
 * parser would turn it into a line feed (XML end-of-line handling) and the signed value would change.
 */
export function escapeText(value: string): string {
  assertXmlChars(value);
  return value.replace(/[&<>\r]/g, (c) => TEXT_ESCAPES[c]!);
}

/** Escapes an attribute value for use inside double quotes; tab and newlines survive normalization. */
export function escapeAttr(value: string): string {
  assertXmlChars(value);
  return value.replace(/[&<>"\t\n\r]/g, (c) => ATTR_ESCAPES[c]!);
}

/**
 * Escapes an attribute value exactly as (exclusive) XML canonicalization writes it: `&`, `<`, `"`,
 * tab, line feed and carriage return, and nothing else (`>` stays as it is). Parsed back and
 * canonicalized, the attribute comes out byte for byte as written, so a value written with this can
 * be digested as written.
 */
export function escapeAttrCanonical(value: string): string {
  assertXmlChars(value);
  return value.replace(/[&<"\t\n\r]/g, (c) => CANONICAL_ATTR_ESCAPES[c]!);
}

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#xD;' };
const ATTR_ESCAPES: Record<string, string> = {
  ...TEXT_ESCAPES,
  '"': '&quot;',
  '\t': '&#x9;',
  '\n': '&#xA;',
};
const CANONICAL_ATTR_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '"': '&quot;',
  '\t': '&#x9;',
  '\n': '&#xA;',
  '\r': '&#xD;',
};

/** A SAML ID: `_` and 32 hex digits (128 random bits), a valid xs:ID / NCName. */
export function samlId(): string {
  return `_${randomBytes(16).toString('hex')}`;
}

/** SAML's xs:dateTime as everyone parses it: UTC, whole seconds, `YYYY-MM-DDTHH:MM:SSZ`. */
export function samlInstant(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new RangeError('invalid date');
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** The instant as it is written (fractional seconds dropped), so callers can record exactly that. */
export function truncateToSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/**
 * Parses untrusted XML. Refuses any document type declaration (so no entities, internal or external:
 * no XXE, no billion laughs), anything that is not well-formed, and more or less than one root
 * element. Parser warnings count as errors: a message an IdP must trust leaves no room for guessing.
 */
/** The XML parser loads at the first document parsed (most sign-ins never parse one; ADR 0046). */
const xmldom = onFirstUse<typeof import('@xmldom/xmldom')>('@xmldom/xmldom');

export function parseXml(xml: string): Document {
  if (typeof xml !== 'string' || xml.length === 0) throw new InvalidXml('empty XML document');
  // Checked on the text too: the parser must never see a DTD, whatever it would make of it.
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) {
    throw new InvalidXml('XML with a document type declaration (DTD) is refused');
  }
  const problems: string[] = [];
  let doc: Document;
  try {
    doc = new xmldom.DOMParser({
      onError: (level, message) => {
        problems.push(`${level}: ${message}`);
      },
    }).parseFromString(xml, xmldom.MIME_TYPE.XML_TEXT);
  } catch (err) {
    throw new InvalidXml(`XML is not well-formed: ${(err as Error).message.split('\n')[0]}`);
  }
  if (problems.length > 0) throw new InvalidXml(`XML is not well-formed: ${problems[0]!.split('\n')[0]}`);
  let roots = 0;
  for (let n = doc.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === n.DOCUMENT_TYPE_NODE) throw new InvalidXml('XML with a DTD is refused');
    if (n.nodeType === n.ELEMENT_NODE) roots++;
  }
  if (roots !== 1 || !doc.documentElement) {
    throw new InvalidXml(`an XML document must have exactly one root element (found ${roots})`);
  }
  return doc;
}

/** The element children of `parent` with this namespace ('' for none) and local name, in document order. */
export function childElements(parent: Element | Document, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === n.ELEMENT_NODE) {
      const el = n as Element;
      if ((el.namespaceURI ?? '') === ns && el.localName === localName) out.push(el);
    }
  }
  return out;
}

/** The single child element with this name, or an InvalidXml naming what is missing or repeated. */
export function onlyChild(parent: Element | Document, ns: string, localName: string): Element {
  const found = childElements(parent, ns, localName);
  if (found.length !== 1) {
    throw new InvalidXml(`expected exactly one ${localName} element, found ${found.length}`);
  }
  return found[0]!;
}

/** All element children, whatever their names (for checking order). */
export function elementChildren(parent: Element): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === n.ELEMENT_NODE) out.push(n as Element);
  }
  return out;
}
