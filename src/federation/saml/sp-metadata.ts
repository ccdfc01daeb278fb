import { X509Certificate } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { InvalidInput } from '../../errors.js';
import {
  attr,
  childElements,
  descendantElements,
  NS,
  parseUntrustedXml,
  UntrustedXmlError,
  xsBoolean,
} from './untrusted-xml.js';

export type SamlBinding = 'HTTP-POST' | 'HTTP-Redirect' | 'HTTP-Artifact';

export const BINDING_URNS: Record<SamlBinding, string> = {
  'HTTP-POST': 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
  'HTTP-Redirect': 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
  'HTTP-Artifact': 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact',
};

export function bindingFromUrn(urn: string): SamlBinding | undefined {
  return (Object.keys(BINDING_URNS) as SamlBinding[]).find((b) => BINDING_URNS[b] === urn);
}

/** One AssertionConsumerService endpoint; exactly one endpoint of a list has isDefault. */
export interface AcsEndpoint {
  url: string;
  binding: SamlBinding;
  index: number;
  isDefault: boolean;
}

export interface SpMetadata {
  entityId: string;
  acsUrls: AcsEndpoint[];
  nameIdFormats: string[];
  /** PEM, from KeyDescriptors with use="signing" or no use */
  signingCertificates: string[];
  authnRequestsSigned: boolean;
  wantAssertionsSigned: boolean;
}

/** The metadata cannot be used; the message says what is wrong with it. A 400 through InvalidInput. */
export class InvalidSpMetadata extends InvalidInput {
  constructor(problem: string) {
    super(`invalid SP metadata: ${problem}`, 'metadataXml');
    this.name = 'InvalidSpMetadata';
  }
}

const SAML2_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
/** Large enough for an SP's metadata with a handful of certificates, small enough to parse at once. */
export const MAX_METADATA_CHARS = 4 * 1024 * 1024;

/**
 * Reads the parts of SAML 2.0 SP metadata (SAML Metadata §2.4.4) Ferry uses. The document is an
 * EntityDescriptor, or an EntitiesDescriptor from which the first entity with an SPSSODescriptor is
 * taken (or the one named by `options.entityId`). Namespace prefixes are free. ACS endpoints with
 * bindings Ferry cannot use (PAOS, SimpleSign) are skipped; the default endpoint is chosen by the
 * rule of SAML Metadata §2.2.3 and marked as the only isDefault.
 */
export function parseSpMetadata(xml: string, options: { entityId?: string } = {}): SpMetadata {
  if (typeof xml !== 'string' || xml.trim() === '') throw new InvalidSpMetadata('the document is empty');
  let root: Element;
  try {
    root = parseUntrustedXml(xml, MAX_METADATA_CHARS).documentElement as Element;
  } catch (err) {
    if (err instanceof UntrustedXmlError) throw new InvalidSpMetadata(err.message);
    throw err;
  }
  if (
    root.namespaceURI !== NS.md ||
    (root.localName !== 'EntityDescriptor' && root.localName !== 'EntitiesDescriptor')
  ) {
    throw new InvalidSpMetadata(
      `the root element is <${root.nodeName}>${root.namespaceURI ? ` in namespace ${root.namespaceURI}` : ''}; ` +
        `SAML metadata starts with <EntityDescriptor> or <EntitiesDescriptor> in namespace ${NS.md}`,
    );
  }
  const entity = pickEntity(root, options.entityId);
  const entityId = (attr(entity, 'entityID') ?? '').trim();
  if (entityId === '') throw new InvalidSpMetadata('the EntityDescriptor has no entityID');
  const sso = pickSpSso(entity, entityId);

  const nameIdFormats = [
    ...new Set(childElements(sso, NS.md, 'NameIDFormat').map((e) => (e.textContent ?? '').trim())),
  ].filter((f) => f !== '');

  const signingCertificates: string[] = [];
  for (const kd of childElements(sso, NS.md, 'KeyDescriptor')) {
    const use = attr(kd, 'use');
    if (use !== undefined && use !== 'signing') continue;
    for (const certEl of descendantElements(kd, NS.ds, 'X509Certificate')) {
      let pem: string;
      try {
        pem = certificateToPem(certEl.textContent ?? '');
      } catch (err) {
        throw new InvalidSpMetadata(`a signing KeyDescriptor of ${entityId} holds ${(err as Error).message}`);
      }
      if (!signingCertificates.includes(pem)) signingCertificates.push(pem);
    }
  }

  return {
    entityId,
    acsUrls: readAcs(sso, entityId),
    nameIdFormats,
    signingCertificates,
    authnRequestsSigned: xsBoolean(attr(sso, 'AuthnRequestsSigned')) ?? false,
    wantAssertionsSigned: xsBoolean(attr(sso, 'WantAssertionsSigned')) ?? false,
  };
}

function pickEntity(root: Element, wanted: string | undefined): Element {
  const entities =
    root.localName === 'EntityDescriptor' ? [root] : descendantElements(root, NS.md, 'EntityDescriptor');
  const spEntities = entities.filter((e) => childElements(e, NS.md, 'SPSSODescriptor').length > 0);
  if (wanted !== undefined) {
    const match = spEntities.find((e) => (attr(e, 'entityID') ?? '').trim() === wanted);
    if (!match) {
      const ids = spEntities.map((e) => attr(e, 'entityID') ?? '(no entityID)');
      throw new InvalidSpMetadata(
        `no SP entity "${wanted}" in the document (it describes: ${ids.length ? ids.join(', ') : 'no SP at all'})`,
      );
    }
    return match;
  }
  const first = spEntities[0];
  if (!first) {
    const idp = entities.some((e) => childElements(e, NS.md, 'IDPSSODescriptor').length > 0);
    throw new InvalidSpMetadata(
      idp
        ? 'the document describes an identity provider (IDPSSODescriptor), not a service provider: upload the metadata of the application, not of an IdP'
        : 'the document has no SPSSODescriptor (no service provider role)',
    );
  }
  return first;
}

function pickSpSso(entity: Element, entityId: string): Element {
  const descriptors = childElements(entity, NS.md, 'SPSSODescriptor');
  const saml2 = descriptors.find((d) =>
    (attr(d, 'protocolSupportEnumeration') ?? '').split(/\s+/).includes(SAML2_PROTOCOL),
  );
  if (!saml2) {
    throw new InvalidSpMetadata(
      `the SPSSODescriptor of ${entityId} does not list ${SAML2_PROTOCOL} in protocolSupportEnumeration (a SAML 1.x-only SP)`,
    );
  }
  return saml2;
}

function readAcs(sso: Element, entityId: string): AcsEndpoint[] {
  const elements = childElements(sso, NS.md, 'AssertionConsumerService');
  const found: Array<{
    url: string;
    binding: SamlBinding;
    index: number | undefined;
    isDefault: boolean | undefined;
  }> = [];
  const skipped: string[] = [];
  for (const el of elements) {
    const bindingUrn = (attr(el, 'Binding') ?? '').trim();
    const url = (attr(el, 'Location') ?? '').trim();
    const binding = bindingFromUrn(bindingUrn);
    if (!binding) {
      skipped.push(bindingUrn || '(no Binding)');
      continue;
    }
    const problem = acsUrlProblem(url);
    if (problem) throw new InvalidSpMetadata(`AssertionConsumerService of ${entityId}: ${problem}`);
    const rawIndex = attr(el, 'index');
    let index: number | undefined;
    if (rawIndex !== undefined) {
      if (!/^\s*\d{1,5}\s*$/.test(rawIndex) || Number(rawIndex) > 65535) {
        throw new InvalidSpMetadata(
          `AssertionConsumerService ${url} has index="${rawIndex}", not an unsignedShort`,
        );
      }
      index = Number(rawIndex);
    }
    found.push({ url, binding, index, isDefault: xsBoolean(attr(el, 'isDefault')) });
  }
  if (found.length === 0) {
    throw new InvalidSpMetadata(
      elements.length === 0
        ? `the SPSSODescriptor of ${entityId} has no AssertionConsumerService`
        : `none of the AssertionConsumerService bindings of ${entityId} is usable (${skipped.join(', ')}); ` +
            `Ferry sends responses with ${BINDING_URNS['HTTP-POST']}`,
    );
  }
  return normalizeAcs(found, (m) => new InvalidSpMetadata(`${entityId}: ${m}`));
}

/**
 * Gives every endpoint an index (missing ones get the next free number) and marks exactly one as the
 * default, by SAML Metadata §2.2.3: the first with isDefault="true", else the first without
 * isDefault="false", else the first.
 */
export function normalizeAcs(
  endpoints: Array<{
    url: string;
    binding: SamlBinding;
    index?: number | undefined;
    isDefault?: boolean | undefined;
  }>,
  fail: (message: string) => Error,
): AcsEndpoint[] {
  const used = new Set<number>();
  for (const e of endpoints) {
    if (e.index === undefined) continue;
    if (!Number.isInteger(e.index) || e.index < 0 || e.index > 65535) {
      throw fail(`ACS index ${e.index} is not an integer between 0 and 65535`);
    }
    if (used.has(e.index)) throw fail(`two AssertionConsumerService endpoints have index ${e.index}`);
    used.add(e.index);
  }
  let next = 0;
  const indexed = endpoints.map((e) => {
    let index = e.index;
    if (index === undefined) {
      while (used.has(next)) next++;
      index = next;
      used.add(index);
    }
    return { url: e.url, binding: e.binding, index, isDefault: e.isDefault };
  });
  let chosen = indexed.findIndex((e) => e.isDefault === true);
  if (chosen < 0) chosen = indexed.findIndex((e) => e.isDefault !== false);
  if (chosen < 0) chosen = 0;
  return indexed.map((e, i) => ({ url: e.url, binding: e.binding, index: e.index, isDefault: i === chosen }));
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Why a URL cannot be an ACS endpoint, or undefined when it can. Assertions are bearer tokens, so they
 * go over https only; plain http is accepted for loopback hosts (a developer's SP on localhost).
 */
export function acsUrlProblem(url: string): string | undefined {
  if (url === '') return 'the Location is empty';
  if (url.length > 2048) return 'the Location is longer than 2048 characters';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not an absolute URL`;
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && LOOPBACK.has(parsed.hostname))) {
    return `"${url}" must use https (plain http only for localhost)`;
  }
  if (parsed.username || parsed.password) return `"${url}" must not carry user info`;
  if (parsed.hash) return `"${url}" must not have a #fragment`;
  return undefined;
}

/**
 * A certificate as PEM, from PEM or from the bare base64 of an X509Certificate element (line breaks
 * and spaces allowed). Throws when the text is not one X.509 certificate.
 */
export function certificateToPem(text: string): string {
  const body = text
    .replace(/-----BEGIN CERTIFICATE-----/, '')
    .replace(/-----END CERTIFICATE-----/, '')
    .replace(/\s+/g, '');
  if (body === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('no base64 certificate');
  try {
    new X509Certificate(Buffer.from(body, 'base64'));
  } catch {
    throw new Error('something that is not an X.509 certificate');
  }
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
