import type { SigningKey } from '../../keys/signing-keys.js';
import { envelopedSignature } from './response.js';
import { escapeAttrCanonical, escapeText, NS, samlId, samlInstant, truncateToSecond } from './xml.js';

/**
 * A SAML Response that carries only a status (no assertion): NoPassive for an IsPassive request when
 * nobody is signed in, NoAuthnContext when the requested authentication context cannot be met. Sent
 * only to an ACS URL already checked against the SP's registration. Signed when a key is given (the
 * default per SP: SPs that "want signed responses" reject an unsigned one), written in canonical form
 * as buildSignedResponse writes its Response, so the digest is over the string itself.
 */
export function buildStatusResponse(
  input: {
    issuer: string;
    destination: string;
    inResponseTo: string;
    status: readonly [string, string?];
    message?: string;
    now: Date;
  },
  key?: SigningKey,
): { xml: string; base64: string; responseId: string } {
  const responseId = samlId();
  const [top, second] = input.status;
  const inner = second ? `<samlp:StatusCode Value="${escapeAttrCanonical(second)}"></samlp:StatusCode>` : '';
  const code = `<samlp:StatusCode Value="${escapeAttrCanonical(top)}">${inner}</samlp:StatusCode>`;
  // Printable ASCII only: the message may quote what the SP sent, and must stay canonical as written.
  const text = input.message?.replace(/[^\x20-\x7e]/g, '?').slice(0, 500);
  const message = text ? `<samlp:StatusMessage>${escapeText(text)}</samlp:StatusMessage>` : '';
  const head =
    `<samlp:Response xmlns:samlp="${NS.protocol}" Destination="${escapeAttrCanonical(input.destination)}" ID="${responseId}"` +
    ` InResponseTo="${escapeAttrCanonical(input.inResponseTo)}" IssueInstant="${samlInstant(truncateToSecond(input.now))}" Version="2.0">` +
    `<saml:Issuer xmlns:saml="${NS.assertion}">${escapeText(input.issuer)}</saml:Issuer>`;
  const tail = `<samlp:Status>${code}${message}</samlp:Status></samlp:Response>`;
  const xml = key ? head + envelopedSignature(responseId, head, tail, key) + tail : head + tail;
  return { xml, base64: Buffer.from(xml, 'utf8').toString('base64'), responseId };
}
