import type { Kysely } from 'kysely';
import { NotFound } from '../errors.js';
import type { Database } from '../store/schema.js';

/**
 * The directory's view of a user for access decisions: structurally access/'s Principal, which the
 * same floor can't import. Issuers build it from the session they hold.
 */
export async function principalOf(
  db: Kysely<Database>,
  userId: string,
  session: { amr: string[]; authTime: string | null; signInRisk?: 'none' | 'low' | 'medium' | 'high' } | null,
  /** when given, a PIM-granted membership whose end has come is left out (decide() also judges it) */
  now?: Date,
) {
  const user = await db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
  if (!user) throw new NotFound('user', userId);
  const groups = await db
    .selectFrom('group_members')
    .innerJoin('groups', 'groups.id', 'group_members.group_id')
    .select(['groups.id', 'groups.display_name', 'group_members.expires_at'])
    .where('group_members.user_id', '=', userId)
    .$if(now !== undefined, (q) =>
      q.where((eb) =>
        eb.or([
          eb('group_members.expires_at', 'is', null),
          eb('group_members.expires_at', '>', now!.toISOString()),
        ]),
      ),
    )
    .orderBy('groups.display_name_key')
    .execute();
  return {
    kind: 'user' as const,
    id: user.id,
    userName: user.user_name,
    active: user.active === 1,
    groups: groups.map((g) =>
      g.expires_at
        ? { id: g.id, name: g.display_name, expiresAt: g.expires_at }
        : { id: g.id, name: g.display_name },
    ),
    attributes: JSON.parse(user.attributes) as Record<string, string>,
    emails: JSON.parse(user.emails) as Array<{ value: string; primary?: boolean }>,
    displayName: user.display_name,
    givenName: user.given_name,
    familyName: user.family_name,
    externalId: user.external_id,
    amr: session?.amr ?? [],
    authTime: session?.authTime ?? null,
    signInRisk: session?.signInRisk ?? ('none' as const),
  };
}

export type DirectoryPrincipal = Awaited<ReturnType<typeof principalOf>>;
