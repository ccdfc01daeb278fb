import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { expectScimError, PATCH_OP, type ScimClient, scimClient } from '../../../test/support/scim.js';

/**
 * The request sequence Microsoft documents for Entra ID's provisioning service ("Build a SCIM
 * endpoint… / Request and response examples", and the SCIM validator), replayed in order with the
 * bodies as Entra sends them, plus the forms it sent before its 2020 fix.
 */
describe.each(ENGINES)("Entra ID's provisioning sequence on %s", (engine) => {
  let ferry: TestFerry;
  let scim: ScimClient;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
    scim = await scimClient(ferry, 'entra');
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('creates, finds, updates, disables and deletes users and groups as Entra does', async () => {
    // Test connection: a lookup of a user that does not exist answers an empty list.
    const probe = await scim.get(`/Users?filter=${encodeURIComponent('userName eq "non-existent user"')}`);
    expect(probe.body).toMatchObject({ totalResults: 0, Resources: [], startIndex: 1 });

    // Create User
    const userName = 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1';
    const created = await scim.post('/Users', {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:User',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
      ],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName,
      active: true,
      emails: [
        { primary: true, type: 'work', value: 'Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com' },
      ],
      meta: { resourceType: 'User' },
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [],
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(
      created.body.meta && (created.body.meta as { location: string }).location,
    );
    expect(created.body).toMatchObject({
      userName,
      active: true,
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      meta: { resourceType: 'User' },
    });
    const id = created.body.id as string;

    // Get User, Get User by query, by query with zero results
    expect((await scim.get(`/Users/${id}`)).body.userName).toBe(userName);
    const byQuery = await scim.get(`/Users?filter=userName+eq+%22${userName}%22`);
    expect(byQuery.body).toMatchObject({ totalResults: 1, itemsPerPage: 1, startIndex: 1 });
    expect(byQuery.body.Resources![0]!.id).toBe(id);
    const byEmail = await scim.get(
      `/Users?filter=${encodeURIComponent('emails[type eq "work"].value eq "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"')}`,
    );
    expect(byEmail.body.Resources!.map((r) => r.id)).toEqual([id]);

    // Update User [Multi-valued properties]
    const multi = await scim.request('PATCH', `/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
      ],
    });
    expect(multi.status).toBe(200);
    expect(multi.body).toMatchObject({
      emails: [{ primary: true, type: 'work', value: 'updatedEmail@microsoft.com' }],
      name: { familyName: 'updatedFamilyName', givenName: 'givenName' },
    });

    // Update User [Single-valued properties]
    const newName = '5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com';
    const single = await scim.request('PATCH', `/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Replace', path: 'userName', value: newName }],
    });
    expect(single.body.userName).toBe(newName);

    // Enterprise extension attributes by full URN, manager as a bare id (Entra's form)
    const manager = await scim.post('/Users', { userName: 'manager@testuser.com' });
    const ext = await scim.patch(`/Users/${id}`, [
      {
        op: 'Add',
        path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department',
        value: 'Finance',
      },
      {
        op: 'Add',
        path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber',
        value: '1234',
      },
      {
        op: 'Replace',
        path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager',
        value: manager.body.id,
      },
    ]);
    expect(ext.body['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User']).toMatchObject({
      department: 'Finance',
      employeeNumber: '1234',
      manager: { value: manager.body.id },
    });

    // Disable User (the form Entra sends today), then the pre-2020 string boolean re-enabling/disabling
    const disabled = await scim.request('PATCH', `/Users/${id}`, {
      Operations: [{ op: 'Replace', path: 'active', value: false }],
      schemas: [PATCH_OP],
    });
    expect(disabled.body.active).toBe(false);
    expect(
      (await scim.get(`/Users?filter=${encodeURIComponent(`userName eq "${newName}"`)}`)).body.Resources![0]!
        .active,
    ).toBe(false);
    expect(
      (await scim.patch(`/Users/${id}`, [{ op: 'Replace', path: 'active', value: 'True' }])).body.active,
    ).toBe(true);

    // Create Group (with Microsoft's extra schema URN), Get Group, Get Group by displayName
    const group = await scim.post('/Groups', {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:Group',
        'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
      ],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'displayName',
      meta: { resourceType: 'Group' },
    });
    expect(group.status).toBe(201);
    expect(group.body).toMatchObject({
      displayName: 'displayName',
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
    });
    const gid = group.body.id as string;
    expect((await scim.get(`/Groups/${gid}?excludedAttributes=members`)).body.displayName).toBe(
      'displayName',
    );
    const byName = await scim.get(
      `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "displayName"')}`,
    );
    expect(byName.body.Resources!.map((r) => r.id)).toEqual([gid]);

    // Update Group [Non-member attributes]
    const renamed = await scim.request('PATCH', `/Groups/${gid}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Replace', path: 'displayName', value: '1879db59-3bdf-4490-ad68-ab880a2694cemD' }],
    });
    expect(renamed.body.displayName).toBe('1879db59-3bdf-4490-ad68-ab880a2694cemD');

    // Update Group [Add Members]
    const added = await scim.request('PATCH', `/Groups/${gid}`, {
      schemas: [PATCH_OP],
      Operations: [
        {
          op: 'Add',
          path: 'members',
          value: [
            { $ref: null, value: id },
            { $ref: null, value: manager.body.id },
          ],
        },
      ],
    });
    expect(added.status).toBe(200);
    expect((added.body.members as unknown[]).length).toBe(2);
    // Entra checks membership with a filter
    const isMember = await scim.get(
      `/Groups?filter=${encodeURIComponent(`id eq "${gid}" and members[value eq "${id}"]`)}&excludedAttributes=members`,
    );
    expect(isMember.body.totalResults).toBe(1);

    // Update Group [Remove Members]: the value-array form, then the pre-2020 path-filter form
    const removed = await scim.request('PATCH', `/Groups/${gid}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: id }] }],
    });
    expect((removed.body.members as Array<{ value: string }>).map((m) => m.value)).toEqual([manager.body.id]);
    const removed2 = await scim.patch(`/Groups/${gid}`, [
      { op: 'Remove', path: `members[value eq "${manager.body.id}"]` },
    ]);
    expect(removed2.body.members).toBeUndefined();
    // removing someone who is not a member is not an error (Entra retries)
    expect(
      (await scim.patch(`/Groups/${gid}`, [{ op: 'Remove', path: 'members', value: [{ value: id }] }]))
        .status,
    ).toBe(200);

    // Delete User, Delete Group
    expect((await scim.del(`/Users/${id}`)).status).toBe(204);
    expectScimError(await scim.get(`/Users/${id}`), 404);
    expect((await scim.del(`/Groups/${gid}`)).status).toBe(204);
    expectScimError(await scim.get(`/Groups/${gid}`), 404);

    // every change is in the audit trail, made by the Entra connection
    const actors = await ferry.services.store.db
      .selectFrom('audit_events')
      .select(['type', 'actor'])
      .where('type', 'in', [
        'user.created',
        'user.updated',
        'user.disabled',
        'group.created',
        'group.member-added',
        'group.member-removed',
        'user.deleted',
        'group.deleted',
      ])
      .execute();
    expect(actors.length).toBeGreaterThanOrEqual(12);
    for (const a of actors)
      expect(JSON.parse(a.actor)).toMatchObject({ type: 'scim-connection', name: 'entra' });
  });
});
