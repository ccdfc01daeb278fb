import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, ENGINES, type TestDatabase } from '../../../test/support/db.js';
import {
  type IdentityCenterScimServer,
  startIdentityCenterScim,
} from '../../../test/support/identity-center-scim.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';
import { InvalidInput } from '../../errors.js';
import { GroupDirectory } from '../../identity/groups.js';
import { PasswordHasher } from '../../identity/passwords.js';
import { UserDirectory } from '../../identity/users.js';
import { MasterKey } from '../../keys/master-key.js';
import { openStore, type Store } from '../../store/open.js';
import { diffOf } from './diff.js';
import type { PushStep } from './plan.js';
import { ScimPushFailed } from './scim-client.js';
import { IdentityCenterPush } from './service.js';
import { IdentityCenterTargets } from './target.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const FAST_RETRY = { retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 } };

describe.each(ENGINES)('SCIM push to IAM Identity Center (%s)', (engine) => {
  let db: TestDatabase;
  let store: Store;
  let clock: ManualClock;
  let users: UserDirectory;
  let groups: GroupDirectory;
  let remote: IdentityCenterScimServer;
  let targets: IdentityCenterTargets;
  let push: IdentityCenterPush;
  let masterKey: MasterKey;

  beforeEach(async () => {
    db = await createMigratedTestDatabase(engine);
    store = openStore(db.url);
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
    masterKey = new MasterKey(randomBytes(32));
    const deps = { store, clock, masterKey, hasher: new PasswordHasher() };
    users = new UserDirectory(deps);
    groups = new GroupDirectory(deps);
    remote = await startIdentityCenterScim();
    targets = new IdentityCenterTargets(store, clock, masterKey);
    await targets.set(ctx, { endpoint: remote.endpoint, token: remote.token });
    push = new IdentityCenterPush(store, clock, targets, FAST_RETRY);
  });

  afterEach(async () => {
    await remote?.close();
    await store?.close();
    await db?.drop();
  });

  const person = (n: number, extra: Partial<Parameters<UserDirectory['create']>[1]> = {}) =>
    users.create(ctx, {
      userName: `user${String(n).padStart(3, '0')}@contoso.example`,
      displayName: `User ${n}`,
      givenName: 'User',
      familyName: String(n),
      ...extra,
    });

  /** What a push must never send: any request Identity Center would refuse. */
  const refused = () => remote.requests.filter((r) => r.status === 400);
  const calls = (method: string, path: RegExp) =>
    remote.requests.filter((r) => r.method === method && path.test(r.path));

  it('pushes a directory with a 250-member group in chunks of at most 100, within every limit', async () => {
    const created = [];
    for (let i = 1; i <= 252; i++) created.push(await person(i));
    // Two emails and two phone numbers: Identity Center keeps one, the primary.
    const multi = await person(999, {
      emails: [
        { value: 'second@contoso.example', type: 'home' },
        { value: 'main@contoso.example', type: 'work', primary: true },
      ],
      phoneNumbers: [
        { value: '+1 555 0100', type: 'mobile' },
        { value: '+1 555 0199', type: 'work', primary: true },
      ],
    });
    const devs = await groups.create(ctx, { displayName: 'AWS-Account1-Developers' });
    const admins = await groups.create(ctx, { displayName: 'AWS-Account1-Administrators' });
    for (const u of created.slice(0, 250)) await groups.setMembership(ctx, devs.id, u.id, true);
    await groups.setMembership(ctx, admins.id, created[250]!.id, true);
    await groups.setMembership(ctx, admins.id, multi.id, true);

    const before = diffOf(await push.plan());
    expect(before.summary).toEqual({
      users: { create: 253, update: 0, delete: 0 },
      groups: { create: 2, update: 0, delete: 0 },
      members: { add: 252, remove: 0 },
    });
    expect(remote.requests).toHaveLength(0); // a dry run sends nothing

    const progress: number[] = [];
    const result = await push.push(ctx, {}, { onProgress: (p) => progress.push(p.done) });
    expect(result.requests.users.created).toBe(253);
    expect(result.requests.groups.created).toBe(2);
    expect(result.requests.members.added).toBe(252);
    expect(progress.at(-1)).toBe(result.applied);

    expect(refused()).toEqual([]);
    expect(remote.users.size).toBe(253);
    const devMembers = created
      .slice(0, 250)
      .map((u) => u.userName)
      .sort();
    expect(remote.memberNames('AWS-Account1-Developers')).toEqual(devMembers);
    expect(remote.memberNames('AWS-Account1-Administrators')).toEqual(
      [created[250]!.userName, multi.userName].sort(),
    );
    // CreateGroup carried the first 100 members, then PatchGroup added 100 and 50.
    const devRemote = remote.groupByName('AWS-Account1-Developers')!;
    const createDevs = calls('POST', /^\/Groups$/).find(
      (r) => (r.body as { displayName: string }).displayName === 'AWS-Account1-Developers',
    )!;
    expect((createDevs.body as { members: unknown[] }).members).toHaveLength(100);
    const patchSizes = calls('PATCH', new RegExp(`^/Groups/${devRemote.id}$`)).map(
      (r) =>
        ((r.body as { Operations: Array<{ value: unknown[] }> }).Operations[0]!.value as unknown[]).length,
    );
    expect(patchSizes).toEqual([100, 50]);
    const mine = remote.userByName(multi.userName)!;
    expect(mine.emails).toEqual([{ value: 'main@contoso.example', type: 'work', primary: true }]);
    expect(mine.phoneNumbers).toEqual([{ value: '+1 555 0199', type: 'work', primary: true }]);
    expect(mine.externalId).toBe(multi.id);

    // Nothing left to do: a second push sends no request at all.
    expect(diffOf(await push.plan()).changes).toEqual([]);
    const sent = remote.requests.length;
    await push.push(ctx);
    expect(remote.requests.length).toBe(sent);
  }, 120_000);

  it('a dry run lists what would be created, updated and deleted, and changes nothing', async () => {
    const ann = await person(1);
    const bob = await person(2);
    const carl = await person(3);
    const team = await groups.create(ctx, { displayName: 'Team' });
    await groups.setMembership(ctx, team.id, ann.id, true);
    await groups.setMembership(ctx, team.id, bob.id, true);
    await push.push(ctx);

    await users.update(ctx, ann.id, { displayName: 'Ann Other', active: false });
    await users.delete(ctx, carl.id);
    await groups.setMembership(ctx, team.id, bob.id, false);
    const dave = await person(4);
    await groups.setMembership(ctx, team.id, dave.id, true);
    await groups.delete(ctx, (await groups.create(ctx, { displayName: 'Gone' })).id);
    const sent = remote.requests.length;

    const diff = diffOf(await push.plan());
    expect(diff.changes).toEqual([
      { action: 'update', kind: 'user', name: ann.userName, details: ['active', 'displayName'] },
      { action: 'create', kind: 'user', name: dave.userName, details: [] },
      { action: 'add-members', kind: 'group', name: 'Team', details: [dave.userName] },
      { action: 'remove-members', kind: 'group', name: 'Team', details: [bob.userName] },
      { action: 'delete', kind: 'user', name: carl.userName, details: [] },
    ]);
    expect(remote.requests.length).toBe(sent);
    expect(remote.userByName(ann.userName)!.active).toBe(true);

    await push.push(ctx);
    expect(remote.userByName(ann.userName)).toMatchObject({ active: false, displayName: 'Ann Other' });
    expect(remote.userByName(carl.userName)).toBeUndefined();
    expect(remote.memberNames('Team')).toEqual([ann.userName, dave.userName].sort());
    expect(refused()).toEqual([]);
  });

  it('waits as long as Retry-After says on 429, then succeeds', async () => {
    await person(1);
    remote.inject({ method: 'POST', path: /^\/Users$/, status: 429, retryAfter: '1' });
    await push.push(ctx);
    const posts = calls('POST', /^\/Users$/);
    expect(posts.map((r) => r.status)).toEqual([429, 201]);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(990);
    expect(remote.users.size).toBe(1);
  });

  it('retries 5xx with backoff, and stops with a clear error when they persist; the next run resumes', async () => {
    const ann = await person(1);
    const team = await groups.create(ctx, { displayName: 'Team' });
    await groups.setMembership(ctx, team.id, ann.id, true);
    remote.inject({ method: 'POST', path: /^\/Groups$/, status: 503, times: 2 });
    await push.push(ctx);
    expect(calls('POST', /^\/Groups$/).map((r) => r.status)).toEqual([503, 503, 201]);
    expect(remote.memberNames('Team')).toEqual([ann.userName]);

    const bob = await person(2);
    await groups.setMembership(ctx, team.id, bob.id, true);
    remote.inject({ method: 'PATCH', path: /^\/Groups\//, status: 500, times: 4 });
    const err = await push.push(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScimPushFailed);
    expect((err as ScimPushFailed).status).toBe(500);
    expect(remote.memberNames('Team')).toEqual([ann.userName]);
    expect(diffOf(await push.plan()).summary.members.add).toBe(1); // still to do

    await push.push(ctx);
    expect(remote.memberNames('Team')).toEqual([ann.userName, bob.userName].sort());
    expect(calls('POST', /^\/Users$/).filter((r) => r.status === 201)).toHaveLength(2);
  });

  it('after a 409 looks the user up by userName and takes it over instead of creating a second one', async () => {
    // Made in Identity Center by hand, before Ferry pushed.
    remote.users.set('hand-made', {
      id: 'hand-made',
      userName: 'USER001@contoso.example',
      displayName: 'Old Name',
      name: { givenName: 'Old', familyName: 'Name' },
      active: true,
    });
    const ann = await person(1);
    await push.push(ctx);
    expect(calls('POST', /^\/Users$/).map((r) => r.status)).toEqual([409]);
    const lookup = calls('GET', /^\/Users$/).at(-1)!;
    expect(lookup.query.filter).toBe(`userName eq "${ann.userName}"`);
    expect(remote.users.size).toBe(1);
    expect(remote.users.get('hand-made')).toMatchObject({ displayName: 'User 1', externalId: ann.id });

    // A later change goes to the adopted user.
    await users.update(ctx, ann.id, { displayName: 'Ann' });
    await push.push(ctx, { userIds: [ann.id] });
    expect(remote.users.get('hand-made')!.displayName).toBe('Ann');
  });

  it('a create whose answer was lost (5xx after the change) ends with one user and one group', async () => {
    const ann = await person(1);
    const team = await groups.create(ctx, { displayName: 'Team' });
    await groups.setMembership(ctx, team.id, ann.id, true);
    remote.inject({ method: 'POST', path: /^\/Users$/, status: 502, afterApply: true });
    remote.inject({ method: 'POST', path: /^\/Groups$/, status: 500, afterApply: true });
    await push.push(ctx);
    expect(calls('POST', /^\/Users$/).map((r) => r.status)).toEqual([502, 409]);
    expect(calls('POST', /^\/Groups$/).map((r) => r.status)).toEqual([500, 409]);
    expect(remote.users.size).toBe(1);
    expect(remote.groups.size).toBe(1);
    expect(remote.memberNames('Team')).toEqual([ann.userName]);
    expect(diffOf(await push.plan()).changes).toEqual([]);
  });

  it('resumes after a crash between steps without duplicates', async () => {
    const people = [];
    for (let i = 1; i <= 130; i++) people.push(await person(i));
    const team = await groups.create(ctx, { displayName: 'Team' });
    for (const p of people) await groups.setMembership(ctx, team.id, p.id, true);

    // Crash 1: Identity Center created the 3rd user, Ferry died before recording it.
    let creates = 0;
    const crashAtThirdUser = (step: PushStep) => {
      if (step.kind === 'user.create' && ++creates === 3) throw new Error('killed');
    };
    await expect(push.push(ctx, {}, { beforeRecord: crashAtThirdUser })).rejects.toThrow('killed');
    expect(remote.users.size).toBe(3);

    // Crash 2: the group was created with 100 members; the PatchGroup with the other 30 went through
    // but was not recorded.
    const restarted = new IdentityCenterPush(store, clock, targets, FAST_RETRY);
    const crashAtMembers = (step: PushStep) => {
      if (step.kind === 'members.add') throw new Error('killed again');
    };
    await expect(restarted.push(ctx, {}, { beforeRecord: crashAtMembers })).rejects.toThrow('killed again');
    expect(remote.memberNames('Team')).toHaveLength(130);

    // Resume: nothing is created twice, nothing is lost, and no request breaks a limit.
    const again = new IdentityCenterPush(store, clock, targets, FAST_RETRY);
    await again.push(ctx);
    expect(remote.users.size).toBe(130);
    expect(remote.groups.size).toBe(1);
    expect(calls('POST', /^\/Users$/).filter((r) => r.status === 201)).toHaveLength(130);
    expect(calls('POST', /^\/Users$/).filter((r) => r.status !== 201)).toEqual([]); // looked up, not re-posted
    expect(remote.memberNames('Team')).toEqual(people.map((p) => p.userName).sort());
    expect(refused()).toEqual([]);
    expect(diffOf(await again.plan()).changes).toEqual([]);
  }, 60_000);

  it('recreates a user deleted in Identity Center behind Ferry’s back', async () => {
    const ann = await person(1);
    await push.push(ctx);
    remote.users.clear();
    await users.update(ctx, ann.id, { displayName: 'Ann' });
    await push.push(ctx);
    expect(remote.userByName(ann.userName)).toMatchObject({ displayName: 'Ann' });
  });

  it('keeps the token sealed at rest and refuses clear-text endpoints off loopback', async () => {
    const row = await store.db.selectFrom('identity_center_targets').selectAll().executeTakeFirstOrThrow();
    expect(row.token_sealed).not.toContain(remote.token);
    expect((await targets.current())?.token).toBe(remote.token);
    expect(await targets.view()).not.toHaveProperty('token');
    await expect(
      targets.set(ctx, { endpoint: 'http://scim.example.com/x/scim/v2', token: 'a'.repeat(20) }),
    ).rejects.toThrow(InvalidInput);
    // Another Identity Center instance: what was pushed to the first one means nothing there.
    await person(1);
    await push.push(ctx);
    await targets.set(ctx, { endpoint: `${remote.endpoint}/other`, token: remote.token });
    expect(diffOf(await push.plan()).summary.users.create).toBe(1);
  });

  it('does nothing for outbox events while no endpoint is configured', async () => {
    await targets.remove(ctx);
    const ann = await person(1);
    expect(await push.sync(ctx, { userIds: [ann.id] })).toBeNull();
    expect(remote.requests).toEqual([]);
  });
});

describe('the limit-enforcing Identity Center server', () => {
  let remote: IdentityCenterScimServer;
  beforeEach(async () => {
    remote = await startIdentityCenterScim();
  });
  afterEach(async () => remote.close());

  const send = async (method: string, path: string, body?: unknown, token = remote.token) => {
    const res = await fetch(`${remote.endpoint}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const user = (n: number, extra: Record<string, unknown> = {}) => ({
    userName: `u${n}@x.example`,
    displayName: `U ${n}`,
    name: { givenName: 'U', familyName: String(n) },
    ...extra,
  });
  const patch = (ops: unknown[]) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: ops,
  });

  it('fails every request that breaks a documented limit, naming it', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 101; i++) ids.push((await send('POST', '/Users', user(i))).body.id as string);
    const members = ids.map((value) => ({ value }));
    const cases: Array<[string, Promise<{ status: number; body: Record<string, unknown> }>, RegExp]> = [
      ['non-eq filter', send('GET', `/Users?filter=${encodeURIComponent('userName co "u1"')}`), /only eq/],
      [
        'or filter',
        send('GET', `/Users?filter=${encodeURIComponent('userName eq "a" or userName eq "b"')}`),
        /or operator/,
      ],
      [
        'not filter',
        send('GET', `/Users?filter=${encodeURIComponent('not userName eq "a"')}`),
        /not operator/,
      ],
      [
        'value path filter',
        send('GET', `/Users?filter=${encodeURIComponent('emails[value eq "a"]')}`),
        /value-path/,
      ],
      ['page over 50', send('GET', '/Users?count=51'), /over the limit of 50/],
      ['/Bulk', send('POST', '/Bulk', { Operations: [] }), /Bulk/],
      [
        'two emails',
        send('POST', '/Users', user(500, { emails: [{ value: 'a@x' }, { value: 'b@x' }] })),
        /multiple values for emails/,
      ],
      [
        'two phones',
        send('POST', '/Users', user(501, { phoneNumbers: [{ value: '1' }, { value: '2' }] })),
        /multiple values for phoneNumbers/,
      ],
      [
        'CreateGroup with 101 members',
        send('POST', '/Groups', { displayName: 'G', members }),
        /at most 100 members/,
      ],
    ];
    for (const [what, pending, detail] of cases) {
      const res = await pending;
      expect(res.status, what).toBe(400);
      expect(res.body.schemas, what).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
      expect(res.body.detail, what).toMatch(detail);
    }
    const group = (await send('POST', '/Groups', { displayName: 'G', members: members.slice(0, 100) })).body;
    expect(group).not.toHaveProperty('members'); // GetGroup and CreateGroup answers carry no members
    const gid = group.id as string;
    const over = await send(
      'PATCH',
      `/Groups/${gid}`,
      patch([
        { op: 'remove', path: 'members', value: members.slice(0, 60) },
        { op: 'add', path: 'members', value: members.slice(60, 101) },
      ]),
    );
    expect(over.status).toBe(400);
    expect(over.body.detail).toMatch(/at most 100 member changes/);
    const replace = await send(
      'PATCH',
      `/Groups/${gid}`,
      patch([{ op: 'replace', path: 'members', value: members.slice(0, 1) }]),
    );
    expect(replace.status).toBe(400);
    expect(replace.body.detail).toMatch(/replace of group members/);
    const replaceNoPath = await send(
      'PATCH',
      `/Groups/${gid}`,
      patch([{ op: 'replace', value: { members: [] } }]),
    );
    expect(replaceNoPath.status).toBe(400);
    expect((await send('GET', `/Groups/${gid}`)).body).not.toHaveProperty('members');
    expect(remote.groupByName('G')!.members.size).toBe(100); // refused requests changed nothing
    expect((await send('GET', '/Users', undefined, 'wrong')).status).toBe(401);
    // Within the limits: eq joined by and, pages of 50.
    const ok = await send(
      'GET',
      `/Users?count=50&filter=${encodeURIComponent('userName eq "u1@x.example" and externalId eq "none"')}`,
    );
    expect(ok.status).toBe(200);
    expect(ok.body.totalResults).toBe(0);
  });
});
