import { type Profile, SAML } from '@node-saml/node-saml';
import { DOMParser, type Element } from '@xmldom/xmldom';

/**
 * A relying party that checks a SAML Response the way AWS's sign-in endpoint is documented to:
 * an independent library (@node-saml/node-saml) verifies the signatures (Response and Assertion),
 * the validity window and the Audience `urn:amazon:webservices`; node-saml 5 does not look at
 * Response/@Destination nor SubjectConfirmationData/@Recipient, so those two (and "exactly one
 * bearer SubjectConfirmation") are checked here, on the document node-saml accepted.
 *
 * node-saml reads the time from Date.now(): tests pin it with vi.setSystemTime.
 */
export interface AwsRelyingPartyOptions {
  idpCert: string | string[];
  signInUrl?: string;
  audience?: string;
  wantAuthnResponseSigned?: boolean;
}

export class RelyingPartyRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelyingPartyRejected';
  }
}

export function awsLikeSaml(options: AwsRelyingPartyOptions): SAML {
  return new SAML({
    callbackUrl: options.signInUrl ?? 'https://signin.aws.amazon.com/saml',
    issuer: options.audience ?? 'urn:amazon:webservices',
    audience: options.audience ?? 'urn:amazon:webservices',
    idpCert: options.idpCert,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: options.wantAuthnResponseSigned ?? true,
    acceptedClockSkewMs: 0,
  });
}

export async function awsLikeAccept(base64: string, options: AwsRelyingPartyOptions): Promise<Profile> {
  const signInUrl = options.signInUrl ?? 'https://signin.aws.amazon.com/saml';
  const { profile } = await awsLikeSaml(options).validatePostResponseAsync({ SAMLResponse: base64 });
  if (!profile) throw new RelyingPartyRejected('no profile');
  const doc = new DOMParser().parseFromString(Buffer.from(base64, 'base64').toString('utf8'), 'text/xml');
  const response = doc.documentElement!;
  const destination = response.getAttribute('Destination');
  if (destination !== signInUrl) {
    throw new RelyingPartyRejected(`Destination ${destination} is not ${signInUrl}`);
  }
  const confirmations = byName(response, 'SubjectConfirmation');
  if (confirmations.length !== 1) {
    throw new RelyingPartyRejected(
      `${confirmations.length} SubjectConfirmation elements, expected exactly one`,
    );
  }
  const confirmation = confirmations[0]!;
  if (confirmation.getAttribute('Method') !== 'urn:oasis:names:tc:SAML:2.0:cm:bearer') {
    throw new RelyingPartyRejected('SubjectConfirmation is not bearer');
  }
  const data = byName(confirmation, 'SubjectConfirmationData')[0];
  const recipient = data?.getAttribute('Recipient');
  if (recipient !== signInUrl) throw new RelyingPartyRejected(`Recipient ${recipient} is not ${signInUrl}`);
  const notOnOrAfter = data?.getAttribute('NotOnOrAfter');
  if (!notOnOrAfter || Date.parse(notOnOrAfter) <= Date.now()) {
    throw new RelyingPartyRejected('SubjectConfirmationData NotOnOrAfter is missing or past');
  }
  return profile;
}

function byName(root: Element, localName: string): Element[] {
  return Array.from(root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', localName));
}
