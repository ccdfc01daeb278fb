import { describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { storeMigratedTo } from '../../../test/support/migrated-store.js';
import { ManualClock } from '../../clock.js';
import { migrateToLatest } from '../../store/migrate.js';
import { ReplayedAuthnRequest } from './request-errors.js';
import { ServiceProviders } from './service-providers.js';

/**
 * Migration 0017 closes SAML apps that have no group, but only for SPs registered after it: those
 * registered before keep working for every active user (as docs/saml.md's upgrade notes say).
 */
describe.each(ENGINES)('SAML service providers: upgrade to 0017 and request IDs on %s', (engine) => {
  const database = storeMigratedTo(engine, '0011_scim_push');

  it('keeps SPs registered before the upgrade open, and registers new ones closed', async () => {
    const { store } = database;
    const now = '2026-03-01T09:00:00.000Z';
    await (store.db as unknown as import('kysely').Kysely<Record<string, Record<string, unknown>>>)
      .insertInto('service_providers')
      .values({
        id: '00000000-0000-4000-8000-0000000000aa',
        entity_id: 'https://old.example/saml',
        name: 'Old app',
        acs_urls: JSON.stringify([
          { url: 'https://old.example/acs', binding: 'HTTP-POST', index: 0, isDefault: true },
        ]),
        name_id_format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
        attribute_map: '{}',
        signing_certificates: '[]',
        require_signed_requests: 0,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await migrateToLatest(store);
    const sps = new ServiceProviders(store, new ManualClock(now));
    expect(await sps.openToAll('https://old.example/saml')).toBe(true);
    const old = await sps.get('https://old.example/saml');
    expect(old).toMatchObject({
      minimumAuthnContext: 'single-factor',
      signStatusResponses: true,
      openToAll: true,
    });
    const added = await sps.add(
      { actor: { type: 'operator', name: 'test' } },
      { name: 'New app', entityId: 'https://new.example/saml', acsUrls: ['https://new.example/acs'] },
    );
    expect(added).toMatchObject({ openToAll: false, signStatusResponses: true });
    expect(await sps.openToAll('https://new.example/saml')).toBe(false);
    expect(await sps.openToAll('https://unknown.example/saml')).toBeUndefined();
  });

  it('remembers an AuthnRequest ID until its window ends; only then may the ID come again', async () => {
    const clock = new ManualClock('2026-03-01T10:00:00.000Z');
    const sps = new ServiceProviders(database.store, clock);
    const until = () => new Date(clock.now().getTime() + 15 * 60_000);
    await sps.rememberRequest('https://old.example/saml', '_req1', until());
    // Another SP may use the same ID: IDs are per issuer.
    await sps.rememberRequest('https://new.example/saml', '_req1', until());
    await expect(sps.rememberRequest('https://old.example/saml', '_req1', until())).rejects.toBeInstanceOf(
      ReplayedAuthnRequest,
    );
    clock.advance(14 * 60_000);
    await expect(sps.rememberRequest('https://old.example/saml', '_req1', until())).rejects.toBeInstanceOf(
      ReplayedAuthnRequest,
    );
    clock.advance(2 * 60_000);
    await sps.rememberRequest('https://old.example/saml', '_req1', until());
    await expect(sps.rememberRequest('https://old.example/saml', '_req1', until())).rejects.toBeInstanceOf(
      ReplayedAuthnRequest,
    );
  });
});
