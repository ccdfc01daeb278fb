import type { Document, Element } from '@xmldom/xmldom';
import { onFirstUse } from '../../lazy-module.js';

/** Why a document from outside was not parsed: `refused` for forbidden constructs, `malformed` otherwise. */
export class UntrustedXmlError extends Error {
  constructor(
    readonly kind: 'refused' | 'malformed',
    message: string,
  ) {
    super(message);
    this.name = 'UntrustedXmlError';
  }
}

/**
 * Parses XML that came from outside (SP metadata, AuthnRequests). A document type declaration is
 * refused before the parser sees it: no DTD means no entity expansion (billion laughs) and no external
 * entities (XXE), whatever the parser would do with them. Every parser complaint, even a warning, is
 * fatal: a SAML message that needs the parser's forgiveness is not one to act on.
 */
/** The XML parser loads at the first document parsed (ADR 0046). */
const xmldom = onFirstUse<typeof import('@xmldom/xmldom')>('@xmldom/xmldom');

export function parseUntrustedXml(xml: string, maxChars: number): Document {
  const text = xml.startsWith('\uFEFF') ? xml.slice(1) : xml;
  if (text.length > maxChars) {
    throw new UntrustedXmlError(
      'refused',
      `the document is ${text.length} characters; the limit is ${maxChars}`,
    );
  }
  if (/<!DOCTYPE/i.test(text)) {
    throw new UntrustedXmlError(
      'refused',
      'the document contains a DOCTYPE declaration, which Ferry never accepts',
    );
  }
  if (/<!ENTITY/i.test(text)) {
    throw new UntrustedXmlError('refused', 'the document declares an ENTITY, which Ferry never accepts');
  }
  let doc: Document;
  try {
    doc = new xmldom.DOMParser({
      locator: false,
      onError: (_level, message) => {
        throw new Error(message);
      },
    }).parseFromString(text, 'application/xml');
  } catch (err) {
    const reason = (err as Error).message.replace(/^\[xmldom [^\]]*\]\t?/, '').split('\n')[0];
    throw new UntrustedXmlError('malformed', `the document is not well-formed XML (${reason})`);
  }
  for (let n = doc.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === n.DOCUMENT_TYPE_NODE) {
      throw new UntrustedXmlError(
        'refused',
        'the document contains a DOCTYPE declaration, which Ferry never accepts',
      );
    }
  }
  if (!doc.documentElement) throw new UntrustedXmlError('malformed', 'the document has no root element');
  return doc;
}

/** Element children of `parent` with the given namespace and local name (any prefix), in document order. */
export function childElements(parent: Element, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === n.ELEMENT_NODE) {
      const el = n as Element;
      if (el.namespaceURI === ns && el.localName === localName) out.push(el);
    }
  }
  return out;
}

export function firstChildElement(parent: Element, ns: string, localName: string): Element | undefined {
  return childElements(parent, ns, localName)[0];
}

/** All descendants (not `root` itself) with the given namespace and local name. */
export function descendantElements(root: Element, ns: string, localName: string): Element[] {
  return Array.from(root.getElementsByTagNameNS(ns, localName));
}

/** The attribute's value, or undefined when it is absent (an empty attribute is ''). */
export function attr(el: Element, name: string): string | undefined {
  return el.hasAttribute(name) ? (el.getAttribute(name) ?? '') : undefined;
}

/** xs:boolean: "true" / "1" / "false" / "0", surrounding whitespace allowed. */
export function xsBoolean(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return undefined;
}

export const NS = {
  md: 'urn:oasis:names:tc:SAML:2.0:metadata',
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
} as const;
