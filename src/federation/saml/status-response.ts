import { escapeAttr, escapeText, samlId, samlInstant } from './xml.js';

/**
 * A SAML Response that carries only a status (no assertion), e.g. NoPassive for an IsPassive request
 * when nobody is signed in. Sent only to an ACS URL already checked against the SP's registration.
 * Unsigned, as SAML Core allows for a Response without an assertion.
 */
export function buildStatusResponse(input: {
  issuer: string;
  destination: string;
  inResponseTo: string;
  status: readonly [string, string?];
  message?: string;
  now: Date;
}): { xml: string; base64: string; responseId: string } {
  const responseId = samlId();
  const [top, second] = input.status;
  const code = second
    ? `<samlp:StatusCode Value="${escapeAttr(top)}"><samlp:StatusCode Value="${escapeAttr(second)}"/></samlp:StatusCode>`
    : `<samlp:StatusCode Value="${escapeAttr(top)}"/>`;
  const message = input.message
    ? `<samlp:StatusMessage>${escapeText(input.message)}</samlp:StatusMessage>`
    : '';
  const xml =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"` +
    ` ID="${responseId}" Version="2.0" IssueInstant="${samlInstant(input.now)}" Destination="${escapeAttr(input.destination)}"` +
    ` InResponseTo="${escapeAttr(input.inResponseTo)}">` +
    `<saml:Issuer>${escapeText(input.issuer)}</saml:Issuer>` +
    `<samlp:Status>${code}${message}</samlp:Status>` +
    `</samlp:Response>`;
  return { xml, base64: Buffer.from(xml, 'utf8').toString('base64'), responseId };
}
