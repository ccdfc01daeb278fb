import type { Kysely } from 'kysely';
import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { iso } from '../../clock.js';
import type { Database, UserRow } from '../../store/schema.js';
import type { IdentityDeps } from '../deps.js';
import type { GroupDirectory } from '../groups.js';
import { findUserRow, type UserDirectory } from '../users.js';
import type { EntraIdentity } from './claims.js';
import { UpstreamSigninError } from './errors.js';

export interface AccountOptions {
  provider: string;
  userMapping: 'provisioned' | 'jit';
  syncGroups: boolean;
}

export interface ResolvedAccount {
  user: UserRow;
  created: boolean;
  linked: boolean;
  groupsAdded: string[];
  groupsRemoved: string[];
}

/** IN lists stay well below both engines' bound-parameter limits. */
const CHUNK = 500;

/**
 * Maps an upstream account to a Ferry user inside the sign-in's transaction. The key is the tenant
 * id + object id (never the UPN or e-mail, which can be reassigned): first a link made at an earlier
 * sign-in, then a user whose externalId is the object id (Entra's SCIM provisioning, with
 * externalId mapped to objectId), then — in `jit` mode only — a new user.
 */
export class UpstreamAccounts {
  constructor(
    private readonly deps: IdentityDeps,
    private readonly users: UserDirectory,
    private readonly groups: GroupDirectory,
    private readonly options: AccountOptions,
  ) {}

  async resolveIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    identity: EntraIdentity,
    groupObjectIds: string[] | null,
  ): Promise<ResolvedAccount> {
    const { provider } = this.options;
    const now = iso(this.deps.clock.now());
    let created = false;
    let linked = false;
    const link = await trx
      .selectFrom('upstream_identities')
      .select('user_id')
      .where('provider', '=', provider)
      .where('tenant_id', '=', identity.tenantId)
      .where('object_id', '=', identity.objectId)
      .executeTakeFirst();
    let user = link
      ? await trx.selectFrom('users').selectAll().where('id', '=', link.user_id).executeTakeFirst()
      : undefined;
    if (!user) {
      const byExternalId = await trx
        .selectFrom('users')
        .selectAll()
        .where('external_id', 'in', [identity.objectId, identity.objectId.toUpperCase()])
        .limit(2)
        .execute();
      if (byExternalId.length > 1) {
        throw new UpstreamSigninError('user-conflict', `several users have externalId ${identity.objectId}`);
      }
      user = byExternalId[0];
    }
    if (!user) {
      if (this.options.userMapping !== 'jit') {
        throw new UpstreamSigninError('unknown-user', `no user with externalId ${identity.objectId}`);
      }
      const made = await this.createIn(trx, ctx, identity);
      user = made.user;
      created = made.created;
    }
    if (user.active !== 1) throw new UpstreamSigninError('disabled', `user ${user.user_name} is disabled`);
    if (!link) {
      await trx
        .insertInto('upstream_identities')
        .values({
          provider,
          tenant_id: identity.tenantId,
          object_id: identity.objectId,
          user_id: user.id,
          created_at: now,
          last_signin_at: now,
        })
        .execute();
      linked = true;
      await appendAudit(trx, this.deps.store.engine, this.deps.clock, {
        type: 'upstream.linked',
        outcome: 'success',
        actor: ctx.actor,
        subject: user.user_name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { provider, tenantId: identity.tenantId, objectId: identity.objectId, userId: user.id },
      });
    } else {
      await trx
        .updateTable('upstream_identities')
        .set({ last_signin_at: now })
        .where('provider', '=', provider)
        .where('tenant_id', '=', identity.tenantId)
        .where('object_id', '=', identity.objectId)
        .execute();
    }
    const { added, removed } =
      this.options.syncGroups && groupObjectIds !== null
        ? await this.syncGroupsIn(trx, ctx, user, groupObjectIds)
        : { added: [], removed: [] };
    return { user, created, linked, groupsAdded: added, groupsRemoved: removed };
  }

  private async createIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    identity: EntraIdentity,
  ): Promise<{ user: UserRow; created: boolean }> {
    const userName = identity.userName ?? identity.email;
    if (!userName || /[\s\p{Cc}]/u.test(userName)) {
      throw new UpstreamSigninError('token-invalid', 'ID token without a usable preferred_username');
    }
    const existing = await findUserRow(trx, userName);
    // The same person's first sign-in in another browser committed between this one's lookups (each
    // statement sees what is committed when it starts): the user it made is this one's, not a conflict.
    if (existing && existing.external_id?.toLowerCase() === identity.objectId.toLowerCase()) {
      return { user: existing, created: false };
    }
    if (existing) {
      // Same name, different (or no) object id: linking by name would hand the account to whoever
      // holds that UPN in Entra today.
      throw new UpstreamSigninError(
        'user-conflict',
        `user ${userName} exists but is not linked to ${identity.objectId}`,
      );
    }
    const id = await this.users.createIn(
      trx,
      ctx,
      {
        userName,
        displayName: identity.displayName,
        givenName: identity.givenName,
        familyName: identity.familyName,
        emails: identity.email ? [{ value: identity.email, type: 'work', primary: true }] : [],
        externalId: identity.objectId,
      },
      null,
    );
    return {
      user: await trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
      created: true,
    };
  }

  /**
   * Makes the user's membership of groups that carry an Entra object id (externalId) match the
   * token; groups without an externalId are Ferry's own and are left alone.
   */
  private async syncGroupsIn(
    trx: Kysely<Database>,
    ctx: AuditContext,
    user: UserRow,
    objectIds: string[],
  ): Promise<{ added: string[]; removed: string[] }> {
    const wanted = new Set(objectIds.map((g) => g.toLowerCase()));
    const desired = [];
    const ids = [...wanted];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      desired.push(
        ...(await trx
          .selectFrom('groups')
          .selectAll()
          .where('external_id', 'in', [...chunk, ...chunk.map((c) => c.toUpperCase())])
          .execute()),
      );
    }
    const current = await trx
      .selectFrom('groups')
      .innerJoin('group_members', 'group_members.group_id', 'groups.id')
      .selectAll('groups')
      .where('group_members.user_id', '=', user.id)
      .where('groups.external_id', 'is not', null)
      // PIM (0024): a membership granted just in time is not the upstream's to take away
      .where('group_members.activation_id', 'is', null)
      .execute();
    const added: string[] = [];
    const removed: string[] = [];
    const currentIds = new Set(current.map((g) => g.id));
    for (const g of desired) {
      if (!currentIds.has(g.id) && (await this.groups.setMembershipIn(trx, ctx, g, user, true))) {
        added.push(g.display_name);
      }
    }
    for (const g of current) {
      if (
        !wanted.has((g.external_id ?? '').toLowerCase()) &&
        (await this.groups.setMembershipIn(trx, ctx, g, user, false))
      ) {
        removed.push(g.display_name);
      }
    }
    return { added, removed };
  }
}
