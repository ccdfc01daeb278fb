import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type AuditContext, actorName } from '../audit/actor.js';
import { type AuditInput, appendAudit, auditAppended, auditRow } from '../audit/ledger.js';
import { iso } from '../clock.js';
import { Conflict, InvalidInput, NotFound } from '../errors.js';
import { isUniqueViolation } from '../store/errors.js';
import { insertRow } from '../store/insert-row.js';
import { enqueueEvent, enqueueEvents } from '../store/outbox.js';
import type { Database, UserRow, UserUpdate } from '../store/schema.js';
import type { IdentityDeps } from './deps.js';
import { checkPasswordPolicy } from './passwords.js';
import { looksLikeId } from './refs.js';
import { revokeUserSessions } from './sessions.js';

export interface Email {
  value: string;
  type?: string;
  primary?: boolean;
}

export interface PhoneNumber {
  value: string;
  type?: string;
  primary?: boolean;
}

/** A postal address as SCIM carries it (RFC 7643 §4.1.2). */
export interface Address {
  type?: string;
  formatted?: string;
  streetAddress?: string;
  locality?: string;
  region?: string;
  postalCode?: string;
  country?: string;
  primary?: boolean;
}

export interface User {
  id: string;
  userName: string;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  emails: Email[];
  phoneNumbers: PhoneNumber[];
  addresses: Address[];
  active: boolean;
  externalId: string | null;
  /** free attributes from the directory: department, costCenter, jobTitle, … */
  attributes: Record<string, string>;
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
  version: number;
}

export interface NewUser {
  userName: string;
  displayName?: string | null;
  givenName?: string | null;
  familyName?: string | null;
  emails?: Email[];
  phoneNumbers?: PhoneNumber[];
  addresses?: Address[];
  active?: boolean;
  externalId?: string | null;
  attributes?: Record<string, string>;
  password?: string;
}

export type UserChanges = Partial<Omit<NewUser, 'userName' | 'password'>> & { userName?: string };

export function userFromRow(row: UserRow): User {
  return {
    id: row.id,
    userName: row.user_name,
    displayName: row.display_name,
    givenName: row.given_name,
    familyName: row.family_name,
    emails: JSON.parse(row.emails) as Email[],
    phoneNumbers: JSON.parse(row.phone_numbers) as PhoneNumber[],
    addresses: JSON.parse(row.addresses) as Address[],
    active: row.active === 1,
    externalId: row.external_id,
    attributes: JSON.parse(row.attributes) as Record<string, string>,
    hasPassword: row.password_hash !== null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: Number(row.version),
  };
}

/** The row of a new user, as createRowIn and createRowsIn write it. */
function newUserRow(input: NewUser, passwordHash: string | null, now: string): UserRow {
  const userName = checkUserName(input.userName);
  return {
    id: randomUUID(),
    user_name: userName,
    user_name_key: userNameKey(userName),
    display_name: input.displayName ?? null,
    given_name: input.givenName ?? null,
    family_name: input.familyName ?? null,
    emails: JSON.stringify(input.emails ?? []),
    phone_numbers: JSON.stringify(input.phoneNumbers ?? []),
    addresses: JSON.stringify(input.addresses ?? []),
    active: input.active === false ? 0 : 1,
    external_id: input.externalId ?? null,
    attributes: JSON.stringify(input.attributes ?? {}),
    password_hash: passwordHash,
    mfa_registration_required: 0,
    created_at: now,
    updated_at: now,
    version: 1,
  };
}

const userCreatedAudit = (ctx: AuditContext, row: UserRow): AuditInput => ({
  type: 'user.created',
  outcome: 'success',
  actor: ctx.actor,
  subject: row.user_name,
  ip: ctx.ip,
  requestId: ctx.requestId,
  data: { userId: row.id, withPassword: row.password_hash !== null },
});

/** A UPN: local@domain, no whitespace or control characters. */
export function checkUserName(userName: string): string {
  const u = userName.trim();
  if (u.length === 0 || u.length > 256 || /[\s\p{Cc}]/u.test(u)) {
    throw new InvalidInput('userName must be 1-256 characters without spaces', 'userName');
  }
  return u;
}

export const userNameKey = (userName: string): string => userName.trim().toLowerCase();

/**
 * One spelling per name for counting and comparing: NFKC (full-width and compatibility forms),
 * then case folding (upper then lower, so ß and SS meet), NFKC again. Not used to find accounts.
 */
export const canonicalUserName = (userName: string): string =>
  userName.trim().normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');

/** Finds a user row by id or by userName (case-insensitive). */
export async function findUserRow(db: Kysely<Database>, ref: string): Promise<UserRow | undefined> {
  const q = db.selectFrom('users').selectAll();
  return looksLikeId(ref)
    ? q.where('id', '=', ref.toLowerCase()).executeTakeFirst()
    : q.where('user_name_key', '=', userNameKey(ref)).executeTakeFirst();
}

export class UserDirectory {
  constructor(private readonly deps: IdentityDeps) {}

  async get(ref: string): Promise<User> {
    const row = await findUserRow(this.deps.store.db, ref);
    if (!row) throw new NotFound('user', ref);
    return userFromRow(row);
  }

  async list(q: { query?: string; active?: boolean; limit?: number; offset?: number } = {}): Promise<{
    items: User[];
    total: number;
  }> {
    let base = this.deps.store.db.selectFrom('users');
    if (q.query) {
      const like = `%${q.query.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      base = base.where((eb) =>
        eb.or([eb('user_name_key', 'like', like), eb(eb.fn('lower', ['display_name']), 'like', like)]),
      );
    }
    if (q.active !== undefined) base = base.where('active', '=', q.active ? 1 : 0);
    const [rows, count] = await Promise.all([
      base
        .selectAll()
        .orderBy('user_name_key')
        .limit(Math.min(q.limit ?? 100, 1000))
        .offset(q.offset ?? 0)
        .execute(),
      base.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(userFromRow), total: Number(count.n) };
  }

  async create(ctx: AuditContext, input: NewUser): Promise<User> {
    const { store } = this.deps;
    const passwordHash = await this.hashNewPassword(input.password);
    try {
      const id = await store.db.transaction().execute((trx) => this.createIn(trx, ctx, input, passwordHash));
      return await this.get(id);
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`a user named ${input.userName.trim()} already exists`);
      throw err;
    }
  }

  /** Checks the policy and hashes a password given at creation (outside any transaction: it is slow). */
  async hashNewPassword(password: string | undefined): Promise<string | null> {
    if (password === undefined) return null;
    checkPasswordPolicy(password);
    return this.deps.hasher.hash(password);
  }

  /**
   * Creates a user inside the caller's transaction (with its outbox event and audit row), so a
   * protocol layer such as SCIM can make one request one transaction. Returns the new id; a taken
   * userName surfaces as the database's unique violation.
   */
  async createIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    input: NewUser,
    passwordHash: string | null,
  ): Promise<string> {
    return (await this.createRowIn(trx, ctx, input, passwordHash)).id;
  }

  /** createIn, returning the row as written, so a caller can answer without reading it back. */
  async createRowIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    input: NewUser,
    passwordHash: string | null,
  ): Promise<UserRow> {
    const { store, clock } = this.deps;
    const row = newUserRow(input, passwordHash, iso(clock.now()));
    const { mfa_registration_required: _default, ...values } = row;
    await insertRow(trx, 'users', values);
    await enqueueEvent(trx, clock, { type: 'user.created', userId: row.id, userName: row.user_name });
    await appendAudit(trx, store.engine, clock, userCreatedAudit(ctx, row));
    return row;
  }

  /**
   * Many createRowIn at once (a bulk import): the same rows, outbox events and audit events, written
   * a few statements per 500 users. One taken userName fails the whole statement, and so the call:
   * the caller then creates them one by one to find which.
   */
  async createRowsIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    items: Array<{ input: NewUser; passwordHash: string | null }>,
  ): Promise<UserRow[]> {
    const { clock } = this.deps;
    const now = iso(clock.now());
    const rows = items.map((i) => newUserRow(i.input, i.passwordHash, now));
    for (let at = 0; at < rows.length; at += 500) {
      const values = rows.slice(at, at + 500).map(({ mfa_registration_required: _d, ...v }) => v);
      await trx.insertInto('users').values(values).execute();
    }
    await enqueueEvents(
      trx,
      clock,
      rows.map((r) => ({ type: 'user.created', userId: r.id, userName: r.user_name })),
    );
    for (let at = 0; at < rows.length; at += 500) {
      const audit = rows.slice(at, at + 500).map((r) => auditRow(clock, userCreatedAudit(ctx, r)).row);
      await trx.insertInto('audit_events').values(audit).execute();
    }
    auditAppended();
    return rows;
  }

  async update(ctx: AuditContext, ref: string, changes: UserChanges): Promise<User> {
    const { store } = this.deps;
    let id = '';
    try {
      await store.db.transaction().execute(async (trx) => {
        const row = await findUserRow(trx, ref);
        if (!row) throw new NotFound('user', ref);
        id = row.id;
        await this.updateIn(trx, ctx, row, changes);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`a user named ${changes.userName} already exists`);
      throw err;
    }
    return this.get(id);
  }

  /**
   * Applies changes to a user read inside the caller's transaction. Deactivation is offboarding:
   * in this same transaction every session is revoked and `user.deactivated` goes to the outbox,
   * so workers (AWS session revocation, OIDC refresh tokens, SCIM push) see it if and only if it
   * happened. Returns the names of the attributes that changed.
   */
  async updateIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    row: UserRow,
    changes: UserChanges & { passwordHash?: string },
  ): Promise<string[]> {
    const { store, clock } = this.deps;
    const now = iso(clock.now());
    const id = row.id;
    const set: UserUpdate = { updated_at: now, version: Number(row.version) + 1 };
    const changed: string[] = [];
    if (changes.userName !== undefined) {
      set.user_name = checkUserName(changes.userName);
      set.user_name_key = userNameKey(set.user_name);
      changed.push('userName');
    }
    const plain = [
      ['displayName', 'display_name'],
      ['givenName', 'given_name'],
      ['familyName', 'family_name'],
      ['externalId', 'external_id'],
    ] as const;
    for (const [field, column] of plain) {
      const value = changes[field];
      if (value === undefined) continue;
      set[column] = value;
      changed.push(field);
    }
    const json = [
      ['emails', 'emails'],
      ['phoneNumbers', 'phone_numbers'],
      ['addresses', 'addresses'],
      ['attributes', 'attributes'],
    ] as const;
    for (const [field, column] of json) {
      const value = changes[field];
      if (value === undefined) continue;
      set[column] = JSON.stringify(value);
      changed.push(field);
    }
    if (changes.passwordHash !== undefined) {
      set.password_hash = changes.passwordHash;
      changed.push('password');
    }
    const wasActive = row.active === 1;
    const willBeActive = changes.active ?? wasActive;
    if (changes.active !== undefined) set.active = willBeActive ? 1 : 0;
    await trx.updateTable('users').set(set).where('id', '=', id).execute();
    const userName = set.user_name ?? row.user_name;
    const audit = { actor: ctx.actor, ip: ctx.ip, requestId: ctx.requestId, subject: userName };
    if (changed.length > 0) {
      await enqueueEvent(trx, clock, { type: 'user.updated', userId: id, userName });
      await appendAudit(trx, store.engine, clock, {
        ...audit,
        type: 'user.updated',
        outcome: 'success',
        data: { userId: id, changed },
      });
    }
    if (changes.passwordHash !== undefined && wasActive === willBeActive) {
      await revokeUserSessions(trx, clock, id, 'password changed');
    }
    if (wasActive && !willBeActive) {
      // Offboarding starts here: sessions end now, and the outbox tells every issuer.
      const revoked = await revokeUserSessions(trx, clock, id, 'user disabled');
      await enqueueEvent(trx, clock, { type: 'user.deactivated', userId: id, userName });
      await appendAudit(trx, store.engine, clock, {
        ...audit,
        type: 'user.disabled',
        outcome: 'success',
        data: { userId: id, sessionsRevoked: revoked, by: actorName(ctx.actor) },
      });
    } else if (!wasActive && willBeActive) {
      await enqueueEvent(trx, clock, { type: 'user.reactivated', userId: id, userName });
      await appendAudit(trx, store.engine, clock, {
        ...audit,
        type: 'user.enabled',
        outcome: 'success',
        data: { userId: id },
      });
    }
    return wasActive !== willBeActive ? [...changed, 'active'] : changed;
  }

  /** "Register MFA at next sign-in": the next password sign-in must enroll a second factor first. */
  async requireMfaRegistration(ctx: AuditContext, ref: string, required: boolean): Promise<void> {
    const user = await this.get(ref);
    const { store, clock } = this.deps;
    await store.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set({ mfa_registration_required: required ? 1 : 0 })
        .where('id', '=', user.id)
        .execute();
      await appendAudit(trx, store.engine, clock, {
        type: 'user.mfa-registration-required',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.userName,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { required },
      });
    });
  }

  async setPassword(ctx: AuditContext, ref: string, password: string): Promise<void> {
    const { store, clock, hasher } = this.deps;
    checkPasswordPolicy(password);
    const passwordHash = await hasher.hash(password);
    await store.db.transaction().execute(async (trx) => {
      const row = await findUserRow(trx, ref);
      if (!row) throw new NotFound('user', ref);
      await trx
        .updateTable('users')
        .set({ password_hash: passwordHash, updated_at: iso(clock.now()) })
        .where('id', '=', row.id)
        .execute();
      // A new password ends every other session, as users expect after a reset.
      const revoked = await revokeUserSessions(trx, clock, row.id, 'password changed');
      await appendAudit(trx, store.engine, clock, {
        type: 'user.password-set',
        outcome: 'success',
        actor: ctx.actor,
        subject: row.user_name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { userId: row.id, sessionsRevoked: revoked },
      });
    });
  }

  async delete(ctx: AuditContext, ref: string): Promise<void> {
    await this.deps.store.db.transaction().execute(async (trx) => {
      const row = await findUserRow(trx, ref);
      if (!row) throw new NotFound('user', ref);
      await this.deleteIn(trx, ctx, row);
    });
  }

  /**
   * Deletes a user inside the caller's transaction: sessions are revoked first (so `session.revoked`
   * reaches the outbox like on deactivation), then the user, their memberships and factors go,
   * with `user.deleted` and the audit row in the same transaction.
   */
  async deleteIn(trx: Kysely<Database>, ctx: AuditContext, row: UserRow): Promise<void> {
    const { store, clock } = this.deps;
    const revoked = await revokeUserSessions(trx, clock, row.id, 'user deleted');
    // user.deleted implies leaving every group; consumers need no membership event per group.
    const memberships = await trx
      .deleteFrom('group_members')
      .where('user_id', '=', row.id)
      .executeTakeFirst();
    await trx.deleteFrom('totp_factors').where('user_id', '=', row.id).execute();
    await trx.deleteFrom('sessions').where('user_id', '=', row.id).execute();
    await trx.deleteFrom('users').where('id', '=', row.id).execute();
    await enqueueEvent(trx, clock, { type: 'user.deleted', userId: row.id, userName: row.user_name });
    await appendAudit(trx, store.engine, clock, {
      type: 'user.deleted',
      outcome: 'success',
      actor: ctx.actor,
      subject: row.user_name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: {
        userId: row.id,
        sessionsRevoked: revoked,
        membershipsRemoved: Number(memberships.numDeletedRows),
      },
    });
  }
}
