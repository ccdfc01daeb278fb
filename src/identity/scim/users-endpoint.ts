import type { Kysely } from 'kysely';
import type { AuditContext } from '../../audit/actor.js';
import type { Store } from '../../store/open.js';
import type { Database, UserRow } from '../../store/schema.js';
import { looksLikeId } from '../refs.js';
import { type NewUser, type User, type UserChanges, type UserDirectory, userFromRow } from '../users.js';
import { coerceResource } from './coerce.js';
import { invalidValue, scimNotFound } from './errors.js';
import type { ScimLane } from './lane.js';
import { applyPatch, type PatchOperation, parsePatchBody } from './patch.js';
import type { Projection } from './projection.js';
import {
  type Created,
  checkIfMatch,
  deletionOf,
  forChange,
  inTransaction,
  type ListQuery,
  type PreparedWrite,
} from './request.js';
import { ResourceReader } from './resource-reader.js';
import { USER, USER_SCHEMA } from './schema.js';
import {
  mergeAttributes,
  toScimUser,
  type UserGroupRef,
  type UserState,
  userStateOf,
} from './user-resource.js';

/** A user to create, from a POST body: checked, its password hashed. */
export interface NewScimUser {
  what: string;
  input: NewUser;
  passwordHash: string | null;
}

/** /Users: SCIM operations carried out on Ferry's user directory, one transaction per request. */
export class ScimUsers {
  constructor(
    private readonly store: Store,
    private readonly directory: UserDirectory,
    /** the SCIM base URL, e.g. https://ferry.example/scim/v2 */
    private readonly baseUrl: () => string,
    /** the connection asking: it sees and changes only its own users */
    private readonly lane: ScimLane,
  ) {
    this.reader = new ResourceReader<UserRow, UserGroupRef>(store, lane, {
      schema: USER,
      table: 'users',
      sortKey: 'user_name_key',
      related: 'groups',
      relatedOf: (db, ids) => this.groupsOf(db, ids),
      toDoc: (row, groups) => toScimUser(userFromRow(row), groups, this.baseUrl()),
    });
  }

  private readonly reader: ResourceReader<UserRow, UserGroupRef>;

  private async groupsOf(db: Kysely<Database>, ids: string[]): Promise<Map<string, UserGroupRef[]>> {
    const out = new Map<string, UserGroupRef[]>();
    if (ids.length === 0) return out;
    const rows = await db
      .selectFrom('group_members')
      .innerJoin('groups', 'groups.id', 'group_members.group_id')
      .select(['group_members.user_id', 'groups.id', 'groups.display_name'])
      .where('group_members.user_id', 'in', ids)
      .orderBy('groups.display_name_key')
      .execute();
    // this lane's groups only (see ScimLane.managedAmong)
    const managed = await this.lane.managedAmong(db, 'group', [...new Set(rows.map((r) => r.id))]);
    for (const r of rows) {
      if (!managed.has(r.id)) continue;
      const list = out.get(r.user_id) ?? [];
      list.push({ id: r.id, displayName: r.display_name });
      out.set(r.user_id, list);
    }
    return out;
  }

  private async row(db: Kysely<Database>, id: string, lock: boolean): Promise<UserRow> {
    if (!looksLikeId(id)) throw scimNotFound('User', id);
    const q = db.selectFrom('users').selectAll().where('id', '=', id.toLowerCase());
    const row = await (lock ? forChange(this.store, q) : q).executeTakeFirst();
    if (!row) throw scimNotFound('User', id);
    if (!lock) await this.lane.checkRead(db, 'user', row.id);
    return row;
  }

  /** The row to change, locked, once the lane allows it; a password only where the lane allows that too. */
  private async rowToChange(db: Kysely<Database>, id: string, settingPassword: boolean): Promise<UserRow> {
    if (!looksLikeId(id)) throw scimNotFound('User', id);
    const origin = await this.lane.checkWrite(db, 'user', id.toLowerCase());
    if (settingPassword) this.lane.checkPassword(origin);
    return this.row(db, id, true);
  }

  async get(id: string, projection: Projection): Promise<{ doc: Record<string, unknown>; version: number }> {
    return this.reader.get(await this.row(this.store.db, id, false), projection);
  }

  list(q: ListQuery) {
    return this.reader.list(q);
  }

  /** POST: the new user's document as written (a new user is in no group yet: nothing to read back). */
  async create(ctx: AuditContext, body: unknown): Promise<Created> {
    const w = await this.creation(ctx, body);
    const row = await inTransaction(this.store, w.what, w.run);
    return { id: row.id, doc: toScimUser(userFromRow(row), [], this.baseUrl()), version: 1 };
  }

  /** A POST made ready outside any transaction: the body checked, a password hashed (slow). */
  async creation(ctx: AuditContext, body: unknown): Promise<PreparedWrite<UserRow> & { user: NewScimUser }> {
    const user = await this.newUser(body);
    return {
      what: user.what,
      user,
      run: async (trx) => {
        const row = await this.directory.createRowIn(trx, ctx, user.input, user.passwordHash);
        await this.lane.claim(trx, 'user', row.id);
        return row;
      },
    };
  }

  /**
   * Many prepared POSTs in one go (a Bulk request's run of user creates): the same rows, a few
   * statements for all. Any failure (one taken userName) fails them all; the caller then runs them
   * one by one.
   */
  async createAllIn(trx: Kysely<Database>, ctx: AuditContext, users: NewScimUser[]): Promise<UserRow[]> {
    const rows = await this.directory.createRowsIn(trx, ctx, users);
    await this.lane.claimAll(
      trx,
      'user',
      rows.map((r) => r.id),
    );
    return rows;
  }

  private async newUser(body: unknown): Promise<NewScimUser> {
    const state = userStateOf(coerceResource(USER, body));
    if (state.password !== undefined) this.lane.checkPassword('provisioned');
    const passwordHash = await this.directory.hashNewPassword(state.password);
    return {
      what: `userName ${state.userName}`,
      passwordHash,
      input: {
        userName: state.userName,
        displayName: state.displayName,
        givenName: state.givenName,
        familyName: state.familyName,
        externalId: state.externalId,
        emails: state.emails,
        phoneNumbers: state.phoneNumbers,
        addresses: state.addresses,
        active: state.active ?? true,
        attributes: state.scimAttributes,
      },
    };
  }

  /** PUT: the body is the whole new resource; `active` left out keeps its value. */
  async replace(ctx: AuditContext, id: string, body: unknown, ifMatch?: string): Promise<void> {
    const w = await this.replacement(ctx, id, body, ifMatch);
    await inTransaction(this.store, w.what, w.run);
  }

  async replacement(
    ctx: AuditContext,
    id: string,
    body: unknown,
    ifMatch?: string,
  ): Promise<PreparedWrite<void>> {
    const state = userStateOf(coerceResource(USER, body));
    const settingPassword = state.password !== undefined;
    // Checked before the (slow) hash, and again under the lock in case an admin moved the user meanwhile.
    if (looksLikeId(id) && settingPassword)
      await this.lane.checkWrite(this.store.db, 'user', id.toLowerCase());
    const passwordHash = settingPassword ? await this.directory.hashNewPassword(state.password) : undefined;
    return {
      what: `userName ${state.userName}`,
      run: async (trx) => {
        const row = await this.rowToChange(trx, id, settingPassword);
        checkIfMatch(ifMatch, Number(row.version));
        await this.write(trx, ctx, row, state, passwordHash ?? undefined);
      },
    };
  }

  async patch(ctx: AuditContext, id: string, body: unknown, ifMatch?: string): Promise<void> {
    const w = await this.patching(ctx, id, body, ifMatch);
    await inTransaction(this.store, w.what, w.run);
  }

  /**
   * A PATCH made ready outside any transaction: the password it sets (if any) hashed first (argon2 is
   * slow; inside the transaction it held SQLite's one writer, and with it every group-committed write,
   * for the whole hash). The password a PATCH sets does not depend on the row, so it is read from the
   * operations; under the lock the patched document must carry that same password.
   */
  async patching(
    ctx: AuditContext,
    id: string,
    body: unknown,
    ifMatch?: string,
  ): Promise<PreparedWrite<void>> {
    const ops = parsePatchBody(body);
    const password = passwordOf(ops);
    // Checked before the (slow) hash, and again under the lock in case an admin moved the user meanwhile.
    // A user that cannot exist (not an id) or is not there answers 404 before any hashing is spent on it.
    if (password !== undefined) {
      if (!looksLikeId(id)) throw scimNotFound('User', id);
      this.lane.checkPassword(await this.lane.checkWrite(this.store.db, 'user', id.toLowerCase()));
    }
    const hashed =
      password === undefined
        ? undefined
        : { password, hash: (await this.directory.hashNewPassword(password)) ?? undefined };
    return {
      what: 'the new userName',
      run: async (trx) => {
        const row = await this.rowToChange(trx, id, false);
        checkIfMatch(ifMatch, Number(row.version));
        const groups = await this.groupsOf(trx, [row.id]);
        const doc = toScimUser(userFromRow(row), groups.get(row.id) ?? [], this.baseUrl());
        applyPatch(USER, doc, ops);
        const state = userStateOf(doc);
        if (state.password !== undefined)
          this.lane.checkPassword(await this.lane.checkWrite(trx, 'user', row.id));
        // The operations' password is the one hashed above; a form passwordOf does not read would
        // still be hashed here rather than lost (none is known).
        const passwordHash =
          state.password === undefined
            ? undefined
            : hashed && hashed.password === state.password
              ? hashed.hash
              : ((await this.directory.hashNewPassword(state.password)) ?? undefined);
        await this.write(trx, ctx, row, state, passwordHash);
      },
    };
  }

  /** Writes what differs (nothing written, no version change, when nothing does). */
  private async write(
    trx: Kysely<Database>,
    ctx: AuditContext,
    row: UserRow,
    state: UserState,
    passwordHash: string | undefined,
  ): Promise<void> {
    const changes = diff(userFromRow(row), state);
    if (passwordHash !== undefined) (changes as { passwordHash?: string }).passwordHash = passwordHash;
    if (Object.keys(changes).length === 0) return;
    await this.directory.updateIn(trx, ctx, row, changes);
  }

  /** DELETE: offboarding by removal, in one transaction (see UserDirectory.deleteIn). */
  async delete(ctx: AuditContext, id: string, ifMatch?: string): Promise<void> {
    const w = this.deletion(ctx, id, ifMatch);
    await inTransaction(this.store, w.what, w.run);
  }

  deletion(ctx: AuditContext, id: string, ifMatch?: string): PreparedWrite<void> {
    return deletionOf(
      'user',
      ifMatch,
      (trx) => this.rowToChange(trx, id, false),
      (trx, row) => this.directory.deleteIn(trx, ctx, row),
    );
  }
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const sorted = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));

function diff(user: User, s: UserState): UserChanges {
  const c: UserChanges = {};
  if (s.userName !== user.userName) c.userName = s.userName;
  if (s.displayName !== user.displayName) c.displayName = s.displayName;
  if (s.givenName !== user.givenName) c.givenName = s.givenName;
  if (s.familyName !== user.familyName) c.familyName = s.familyName;
  if (s.externalId !== user.externalId) c.externalId = s.externalId;
  if (!sameJson(s.emails, user.emails)) c.emails = s.emails;
  if (!sameJson(s.phoneNumbers, user.phoneNumbers)) c.phoneNumbers = s.phoneNumbers;
  if (!sameJson(s.addresses, user.addresses)) c.addresses = s.addresses;
  const attributes = mergeAttributes(user.attributes, s.scimAttributes);
  if (!sameJson(sorted(attributes), sorted(user.attributes))) c.attributes = attributes;
  if (s.active !== undefined && s.active !== user.active) c.active = s.active;
  if (c.userName !== undefined && c.userName.trim() === '') throw invalidValue('userName cannot be empty');
  return c;
}

/**
 * The password a User PATCH sets, read from its operations (the last one wins, as applyPatch does):
 * `add`/`replace` with path `password` (or behind the core schema URN), or without a path and a value
 * object carrying `password`. Undefined when none sets one.
 */
export function passwordOf(ops: readonly PatchOperation[]): string | undefined {
  let password: string | undefined;
  const isPassword = (name: string) => {
    const lower = name.toLowerCase();
    return lower === 'password' || lower === `${USER_SCHEMA.toLowerCase()}:password`;
  };
  for (const op of ops) {
    if (op.op === 'remove') continue;
    if (op.path !== undefined) {
      if (isPassword(op.path) && typeof op.value === 'string') password = op.value;
      continue;
    }
    if (typeof op.value !== 'object' || op.value === null || Array.isArray(op.value)) continue;
    for (const [k, v] of Object.entries(op.value)) if (isPassword(k) && typeof v === 'string') password = v;
  }
  return password;
}
