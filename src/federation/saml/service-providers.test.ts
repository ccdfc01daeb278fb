import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../../test/support/db.js';
import { IDC, identityCenterMetadata } from '../../../test/support/saml-fixtures.js';
import type { AuditContext } from '../../audit/actor.js';
import { listAudit } from '../../audit/ledger.js';
import { ManualClock } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import { type GeneratedSigningKey, generateSelfSignedRsa } from '../../keys/self-signed-certificate.js';
import { openStore, type Store } from '../../store/open.js';
import {
  NAME_ID_FORMATS,
  resolveAcs,
  type ServiceProvider,
  ServiceProviders,
  UnknownServiceProvider,
  UnregisteredAcs,
} from './service-providers.js';
import { InvalidSpMetadata } from './sp-metadata.js';

const ctx: AuditContext = {
  actor: { type: 'user', id: 'u-admin', name: 'Test-AWSAdmin@contoso.example' },
  ip: '192.0.2.10',
  requestId: 'req-1',
};

let spKey: GeneratedSigningKey;
let rotatedKey: GeneratedSigningKey;

beforeAll(async () => {
  const notBefore = new Date('2026-01-01T00:00:00Z');
  [spKey, rotatedKey] = await Promise.all([
    generateSelfSignedRsa({ commonName: 'idc', modulusLength: 2048, notBefore, validityDays: 365 }),
    generateSelfSignedRsa({ commonName: 'idc-next', modulusLength: 2048, notBefore, validityDays: 365 }),
  ]);
});

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

describe.each(ENGINES)('ServiceProviders on %s', (engine) => {
  let testDb: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let sps: ServiceProviders;
  /** audit events of earlier tests are not this test's */
  let auditSeqBefore = 0;

  beforeAll(async () => {
    testDb = await createMigratedTestDatabase(engine);
    store = openStore(testDb.url);
  });

  afterAll(async () => {
    await store?.close();
    await testDb?.drop();
  });

  beforeEach(async () => {
    await store.db.deleteFrom('service_providers').execute();
    clock = new ManualClock('2026-03-01T09:00:00.000Z');
    sps = new ServiceProviders(store, clock);
    const last = await store.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    auditSeqBefore = Number(last?.seq ?? 0);
  });

  const auditOf = async (type: string, subject: string) =>
    listAudit(store.db, { type, subject, afterSeq: auditSeqBefore, limit: 1000 });

  it('adds IAM Identity Center from its metadata, audited in the same change', async () => {
    const sp = await sps.add(ctx, {
      name: 'AWS IAM Identity Center',
      metadataXml: identityCenterMetadata(spKey.certificatePem),
    });
    expect(sp).toMatchObject({
      entityId: IDC.entityId,
      name: 'AWS IAM Identity Center',
      acsUrls: [
        { url: IDC.acsUrl, binding: 'HTTP-POST', index: 0, isDefault: true },
        { url: IDC.dualStackAcsUrl, binding: 'HTTP-POST', index: 1, isDefault: false },
      ],
      nameIdFormat: NAME_ID_FORMATS.emailAddress,
      attributeMap: {},
      requireSignedRequests: false,
      createdAt: '2026-03-01T09:00:00.000Z',
      updatedAt: '2026-03-01T09:00:00.000Z',
    });
    expect(sp.signingCertificates.map(fingerprint)).toEqual([fingerprint(spKey.certificatePem)]);
    expect(await sps.get(sp.id)).toEqual(sp);

    const events = await auditOf('service-provider.added', IDC.entityId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      outcome: 'success',
      actor: ctx.actor,
      ip: '192.0.2.10',
      requestId: 'req-1',
      data: {
        serviceProviderId: sp.id,
        name: 'AWS IAM Identity Center',
        source: 'metadata',
        acsUrls: [IDC.acsUrl, IDC.dualStackAcsUrl],
        signingCertificates: [fingerprint(spKey.certificatePem)],
        requireSignedRequests: false,
      },
    });
  });

  it('adds an SP from explicit fields, with emailAddress as the default NameID format', async () => {
    const sp = await sps.add(ctx, {
      name: 'Wiki',
      entityId: 'https://wiki.example/saml/metadata',
      acsUrls: ['https://wiki.example/saml/acs', { url: 'https://wiki.example/saml/acs2', index: 0 }],
      attributeMap: {
        'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': 'email',
        groups: 'groups',
        department: 'attributes.department',
      },
    });
    expect(sp.nameIdFormat).toBe('urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress');
    expect(sp.acsUrls).toEqual([
      { url: 'https://wiki.example/saml/acs', binding: 'HTTP-POST', index: 1, isDefault: true },
      { url: 'https://wiki.example/saml/acs2', binding: 'HTTP-POST', index: 0, isDefault: false },
    ]);
    expect(sp.attributeMap).toEqual({
      'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': 'email',
      groups: 'groups',
      department: 'attributes.department',
    });
    expect(sp.signingCertificates).toEqual([]);
    const events = await auditOf('service-provider.added', 'https://wiki.example/saml/metadata');
    expect(events[0]?.data).toMatchObject({ source: 'fields', nameIdFormat: NAME_ID_FORMATS.emailAddress });
  });

  it('answers 409 Conflict for a duplicate entity id, and records nothing for it', async () => {
    await sps.add(ctx, {
      name: 'Identity Center',
      metadataXml: identityCenterMetadata(spKey.certificatePem),
    });
    const err = await rejection(
      sps.add(ctx, { name: 'Again', entityId: IDC.entityId, acsUrls: ['https://elsewhere.example/acs'] }),
    );
    expect(err).toBeInstanceOf(Conflict);
    expect((err as Error).message).toBe(
      `a service provider with entity id ${IDC.entityId} is already registered (as "Identity Center")`,
    );
    expect(await sps.list()).toHaveLength(1);
    expect(await auditOf('service-provider.added', IDC.entityId)).toHaveLength(1);
  });

  it('lets exactly one of two concurrent adds of the same entity id win', async () => {
    const input = { name: 'Race', entityId: 'https://race.example', acsUrls: ['https://race.example/acs'] };
    const results = await Promise.allSettled([sps.add(ctx, input), sps.add(ctx, input)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.reason).toBeInstanceOf(Conflict);
  });

  it('validates the attribute map, names and URLs on add', async () => {
    const base = { name: 'App', entityId: 'https://app.example', acsUrls: ['https://app.example/acs'] };
    const badField = await rejection(sps.add(ctx, { ...base, attributeMap: { mail: 'password' } }));
    expect(badField).toBeInstanceOf(InvalidInput);
    expect((badField as InvalidInput).message).toBe(
      'attribute "mail" maps to "password"; use one of userName, email, displayName, givenName, familyName, id, externalId, groups or attributes.<key>',
    );
    expect((badField as InvalidInput).field).toBe('attributeMap');
    const badKey = await rejection(sps.add(ctx, { ...base, attributeMap: { x: 'attributes.' } }));
    expect((badKey as InvalidInput).message).toMatch(/maps to "attributes\."/);
    const badName = await rejection(sps.add(ctx, { ...base, attributeMap: { ' padded': 'email' } }));
    expect((badName as InvalidInput).message).toMatch(/attribute name " padded"/);
    expect(await rejection(sps.add(ctx, { ...base, name: '  ' }))).toBeInstanceOf(InvalidInput);
    const http = await rejection(sps.add(ctx, { ...base, acsUrls: ['http://app.example/acs'] }));
    expect((http as InvalidInput).message).toMatch(/must use https/);
    const noAcs = await rejection(sps.add(ctx, { name: 'App', entityId: 'https://app.example' }));
    expect((noAcs as InvalidInput).message).toMatch(/at least one ACS URL/);
    const noEntity = await rejection(sps.add(ctx, { name: 'App', acsUrls: ['https://app.example/acs'] }));
    expect((noEntity as InvalidInput).field).toBe('entityId');
    const format = await rejection(
      sps.add(ctx, { ...base, nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName' }),
    );
    expect((format as InvalidInput).message).toMatch(/NameID format .* is not supported/);
    const signedNoCert = await rejection(sps.add(ctx, { ...base, requireSignedRequests: true }));
    expect((signedNoCert as InvalidInput).message).toMatch(/needs at least one signing certificate/);
    const badCert = await rejection(
      sps.add(ctx, {
        ...base,
        signingCertificates: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'],
      }),
    );
    expect((badCert as InvalidInput).message).toMatch(
      /signing certificate #1 is something that is not an X.509 certificate/,
    );
    const mismatch = await rejection(
      sps.add(ctx, {
        name: 'IdC',
        entityId: 'https://other.example',
        metadataXml: identityCenterMetadata(spKey.certificatePem),
      }),
    );
    expect((mismatch as InvalidInput).message).toMatch(/differs from the metadata's entityID/);
    expect(await rejection(sps.add(ctx, { name: 'IdC', metadataXml: '<html/>' }))).toBeInstanceOf(
      InvalidSpMetadata,
    );
    expect(await sps.list()).toEqual([]);
  });

  it('accepts NameID format short names and lets explicit fields override the metadata', async () => {
    const sp = await sps.add(ctx, {
      name: 'IdC',
      metadataXml: identityCenterMetadata(spKey.certificatePem),
      nameIdFormat: 'persistent',
      acsUrls: [IDC.acsUrl],
      requireSignedRequests: true,
    });
    expect(sp.nameIdFormat).toBe('urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
    expect(sp.acsUrls).toEqual([{ url: IDC.acsUrl, binding: 'HTTP-POST', index: 0, isDefault: true }]);
    expect(sp.requireSignedRequests).toBe(true);
  });

  it('gets by id or entity id, lists by name, and says what was not found', async () => {
    const b = await sps.add(ctx, { name: 'B app', entityId: 'urn:b', acsUrls: ['https://b.example/acs'] });
    const a = await sps.add(ctx, { name: 'A app', entityId: 'urn:a', acsUrls: ['https://a.example/acs'] });
    expect((await sps.get('urn:b')).id).toBe(b.id);
    expect((await sps.get(a.id)).entityId).toBe('urn:a');
    expect((await sps.list()).map((s) => s.name)).toEqual(['A app', 'B app']);
    const missing = await rejection(sps.get('urn:c'));
    expect(missing).toBeInstanceOf(NotFound);
    expect((missing as Error).message).toBe('service provider urn:c not found');
  });

  it('re-imports metadata keeping name, NameID format and attribute map, audited with what changed', async () => {
    const sp = await sps.add(ctx, {
      name: 'Identity Center (prod)',
      metadataXml: identityCenterMetadata(spKey.certificatePem),
      nameIdFormat: 'emailAddress',
      attributeMap: {
        'https://aws.amazon.com/SAML/Attributes/AccessControl:department': 'attributes.department',
      },
    });
    clock.advance(60_000);
    const rotated = identityCenterMetadata(rotatedKey.certificatePem)
      .replace('AuthnRequestsSigned="false"', 'AuthnRequestsSigned="true"')
      .replaceAll(IDC.dualStackAcsUrl, `${IDC.dualStackAcsUrl}-new`);
    const updated = await sps.update(ctx, sp.id, { metadataXml: rotated });
    expect(updated.name).toBe('Identity Center (prod)');
    expect(updated.attributeMap).toEqual(sp.attributeMap);
    expect(updated.nameIdFormat).toBe(sp.nameIdFormat);
    expect(updated.acsUrls.map((a) => a.url)).toEqual([IDC.acsUrl, `${IDC.dualStackAcsUrl}-new`]);
    expect(updated.signingCertificates.map(fingerprint)).toEqual([fingerprint(rotatedKey.certificatePem)]);
    expect(updated.requireSignedRequests).toBe(true);
    expect(updated.createdAt).toBe('2026-03-01T09:00:00.000Z');
    expect(updated.updatedAt).toBe('2026-03-01T09:01:00.000Z');
    const events = await auditOf('service-provider.updated', IDC.entityId);
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({
      serviceProviderId: sp.id,
      source: 'metadata',
      changed: ['acsUrls', 'signingCertificates', 'requireSignedRequests'],
      signingCertificates: [fingerprint(rotatedKey.certificatePem)],
    });

    // A re-import saying AuthnRequestsSigned="false" does not switch the requirement off…
    const again = await sps.update(ctx, IDC.entityId, {
      metadataXml: identityCenterMetadata(rotatedKey.certificatePem),
    });
    expect(again.requireSignedRequests).toBe(true);
    // …only an explicit change does.
    expect((await sps.update(ctx, sp.id, { requireSignedRequests: false })).requireSignedRequests).toBe(
      false,
    );
  });

  it('audits nothing when an update changes nothing', async () => {
    const sp = await sps.add(ctx, {
      name: 'Same',
      entityId: 'urn:same',
      acsUrls: ['https://same.example/acs'],
    });
    const after = await sps.update(ctx, 'urn:same', {
      name: ' Same ',
      acsUrls: ['https://same.example/acs'],
    });
    expect(after).toEqual(sp);
    expect(await auditOf('service-provider.updated', 'urn:same')).toEqual([]);
  });

  it('refuses to move an SP onto an entity id another one has', async () => {
    await sps.add(ctx, { name: 'One', entityId: 'urn:one', acsUrls: ['https://one.example/acs'] });
    await sps.add(ctx, { name: 'Two', entityId: 'urn:two', acsUrls: ['https://two.example/acs'] });
    const err = await rejection(sps.update(ctx, 'urn:two', { entityId: 'urn:one' }));
    expect(err).toBeInstanceOf(Conflict);
    expect((await sps.get('urn:two')).name).toBe('Two');
    const moved = await sps.update(ctx, 'urn:two', { entityId: 'urn:three' });
    expect(moved.entityId).toBe('urn:three');
    const events = await auditOf('service-provider.updated', 'urn:three');
    expect(events[0]?.data).toMatchObject({ changed: ['entityId'], previousEntityId: 'urn:two' });
    expect(await rejection(sps.update(ctx, 'urn:nope', { name: 'x' }))).toBeInstanceOf(NotFound);
  });

  it('removes an SP, audited; removing it again is NotFound', async () => {
    const sp = await sps.add(ctx, {
      name: 'Gone',
      entityId: 'urn:gone',
      acsUrls: ['https://gone.example/acs'],
    });
    await sps.remove(ctx, 'urn:gone');
    expect(await rejection(sps.get(sp.id))).toBeInstanceOf(NotFound);
    const events = await auditOf('service-provider.removed', 'urn:gone');
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toEqual({ serviceProviderId: sp.id, name: 'Gone' });
    expect(await rejection(sps.remove(ctx, sp.id))).toBeInstanceOf(NotFound);
  });

  it('findByEntityId returns the SP, or UnknownServiceProvider carrying the received and registered ids', async () => {
    await sps.add(ctx, { name: 'IdC', metadataXml: identityCenterMetadata(spKey.certificatePem) });
    await sps.add(ctx, {
      name: 'Wiki',
      entityId: 'https://wiki.example/saml',
      acsUrls: ['https://wiki.example/acs'],
    });
    expect((await sps.findByEntityId(IDC.entityId)).name).toBe('IdC');

    const amazonHost = 'https://us-east-1.signin.aws.amazon.com/platform/saml/d-1234567890';
    const err = await rejection(sps.findByEntityId(amazonHost));
    expect(err).toBeInstanceOf(UnknownServiceProvider);
    const unknown = err as UnknownServiceProvider;
    expect(unknown.received).toBe(amazonHost);
    expect(unknown.registered).toEqual([IDC.entityId, 'https://wiki.example/saml']);
    expect(unknown.message).toBe(
      `No service provider with entity id "${amazonHost}" is registered in Ferry. ` +
        `The registered "${IDC.entityId}" has the same path on a different host. ` +
        `Registered entity ids: "${IDC.entityId}", "https://wiki.example/saml".`,
    );
    expect(unknown.status).toBe(400);
    expect(unknown.body()).toMatchObject({ received: amazonHost, registered: unknown.registered });

    const slash = (await rejection(
      sps.findByEntityId('https://wiki.example/saml/'),
    )) as UnknownServiceProvider;
    expect(slash.message).toMatch(
      /differs from the registered "https:\/\/wiki.example\/saml" only in case, scheme or a trailing slash/,
    );
    // exact match only: no prefix or case folding
    expect(await rejection(sps.findByEntityId('https://wiki.example/SAML'))).toBeInstanceOf(
      UnknownServiceProvider,
    );
    expect(await rejection(sps.findByEntityId('https://wiki.example/'))).toBeInstanceOf(
      UnknownServiceProvider,
    );
  });

  it('resolves the ACS of a stored SP', async () => {
    const sp = await sps.add(ctx, { name: 'IdC', metadataXml: identityCenterMetadata(spKey.certificatePem) });
    expect(sps.resolveAcs(sp)).toEqual({ url: IDC.acsUrl, binding: 'HTTP-POST' });
    expect(sps.resolveAcs(sp, IDC.dualStackAcsUrl)).toEqual({
      url: IDC.dualStackAcsUrl,
      binding: 'HTTP-POST',
    });
  });
});

describe('resolveAcs', () => {
  const sp: ServiceProvider = {
    id: '00000000-0000-4000-8000-000000000001',
    entityId: 'https://app.example/saml',
    name: 'App',
    acsUrls: [
      { url: 'https://app.example/saml/acs', binding: 'HTTP-POST', index: 0, isDefault: false },
      { url: 'https://app.example/saml/acs/artifact', binding: 'HTTP-Artifact', index: 3, isDefault: false },
      { url: 'https://eu.app.example/saml/acs', binding: 'HTTP-POST', index: 5, isDefault: true },
    ],
    nameIdFormat: NAME_ID_FORMATS.emailAddress,
    attributeMap: {},
    signingCertificates: [],
    requireSignedRequests: false,
    minimumAuthnContext: 'single-factor',
    signStatusResponses: true,
    openToAll: false,
    createdAt: '2026-03-01T09:00:00.000Z',
    updatedAt: '2026-03-01T09:00:00.000Z',
  };

  const unregistered = (url?: string, index?: number): UnregisteredAcs => {
    try {
      resolveAcs(sp, url, index);
    } catch (err) {
      expect(err).toBeInstanceOf(UnregisteredAcs);
      return err as UnregisteredAcs;
    }
    throw new Error('expected UnregisteredAcs');
  };

  it('returns the default endpoint when the request names none', () => {
    expect(resolveAcs(sp)).toEqual({ url: 'https://eu.app.example/saml/acs', binding: 'HTTP-POST' });
  });

  it('passes over a default endpoint whose binding Ferry cannot answer on', () => {
    const artifactDefault: ServiceProvider = {
      ...sp,
      acsUrls: sp.acsUrls.map((e) => ({ ...e, isDefault: e.binding === 'HTTP-Artifact' })),
    };
    expect(resolveAcs(artifactDefault)).toEqual({
      url: 'https://app.example/saml/acs',
      binding: 'HTTP-POST',
    });
    const onlyArtifact: ServiceProvider = {
      ...sp,
      acsUrls: sp.acsUrls.filter((e) => e.binding === 'HTTP-Artifact'),
    };
    expect(resolveAcs(onlyArtifact)).toEqual({
      url: 'https://app.example/saml/acs/artifact',
      binding: 'HTTP-Artifact',
    });
  });

  it('returns the endpoint named by exact URL, by index, or by both when they agree', () => {
    expect(resolveAcs(sp, 'https://app.example/saml/acs')).toEqual({
      url: 'https://app.example/saml/acs',
      binding: 'HTTP-POST',
    });
    expect(resolveAcs(sp, undefined, 3)).toEqual({
      url: 'https://app.example/saml/acs/artifact',
      binding: 'HTTP-Artifact',
    });
    expect(resolveAcs(sp, 'https://eu.app.example/saml/acs', 5).url).toBe('https://eu.app.example/saml/acs');
  });

  it('refuses a URL that only resembles a registered one, naming received and registered values', () => {
    const registered = [
      'https://app.example/saml/acs',
      'https://app.example/saml/acs/artifact',
      'https://eu.app.example/saml/acs',
    ];
    for (const url of [
      'https://app.example/saml/acs/../../evil',
      'https://app.example/saml/acs/x', // a prefix match would accept this
      'https://app.example/saml/acs?next=https://evil.example',
      'https://APP.example/saml/acs',
      'https://app.example/saml/ac',
    ]) {
      const err = unregistered(url);
      expect(err.received).toBe(url);
      expect(err.registered).toEqual(registered);
      expect(err.entityId).toBe('https://app.example/saml');
    }
    const slash = unregistered('https://app.example/saml/acs/');
    expect(slash.message).toBe(
      'The AuthnRequest from "https://app.example/saml" asks for the assertion to be sent to https://app.example/saml/acs/, ' +
        'which is not registered for that service provider. It differs from the registered "https://app.example/saml/acs" ' +
        'only in case, scheme or a trailing slash. Registered: "https://app.example/saml/acs", ' +
        '"https://app.example/saml/acs/artifact", "https://eu.app.example/saml/acs".',
    );
  });

  it('refuses an unknown index, and a URL whose index does not match', () => {
    const byIndex = unregistered(undefined, 1);
    expect(byIndex.received).toBe('AssertionConsumerServiceIndex 1');
    expect(byIndex.registered).toEqual([
      'index 0: https://app.example/saml/acs',
      'index 3: https://app.example/saml/acs/artifact',
      'index 5: https://eu.app.example/saml/acs',
    ]);
    const both = unregistered('https://app.example/saml/acs', 5);
    expect(both.received).toBe('https://app.example/saml/acs (index 5)');
    expect(both.registered).toContain('https://app.example/saml/acs (index 0)');
  });
});
