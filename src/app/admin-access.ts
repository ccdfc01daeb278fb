import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ADMIN_ROLE_NAMES,
  ADMIN_ROLES,
  type AdminRole,
  isPermission,
  type Permission,
  permissionsOf,
  rolesGranting,
  scopesAllow,
} from '../access/admin-roles.js';
import type { AccessDecider } from '../access/decide.js';
import type { Decision } from '../access/decision.js';
import type { Principal, Signals } from '../access/principal.js';
import type { ApiToken, ApiTokens } from '../identity/api-tokens.js';
import type { Caller, CallerAuthenticator, CallerPrincipal } from '../identity/caller.js';
import { Problem, Unauthorized } from '../problem.js';
import type { AdminRefusals, RefusalReason } from './admin-refusals.js';

/** What a route group requires when a route declares nothing itself: reads and changes. */
export interface GroupPermissions {
  read: Permission;
  write: Permission;
}

/** One admin role as a person holds it right now: usable, or usable after a step-up. */
export interface HeldAdminRole {
  role: AdminRole;
  title: string;
  effect: 'allow' | 'step-up';
  require?: string[];
  reasons: string[];
}

export interface AdminAccessDeps {
  apiTokens: ApiTokens;
  /** a person signed in on Ferry's pages: the browser session cookie */
  person: CallerAuthenticator;
  access: AccessDecider;
  /** audits the guard's 403s, rate-limited per actor and route (docs/decisions/0041) */
  refusals?: AdminRefusals;
  /** a directory user as decide() sees them, from the database (a token's creator); null when gone */
  principalOf?: (userId: string) => Promise<Principal | null>;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

const signalsOf = (req: FastifyRequest): Signals => ({
  ip: req.ip,
  client: 'browser',
  userAgent: req.headers['user-agent'] ?? null,
});

/**
 * The one admin authentication and authorization path (docs/decisions/0026). Every admin route group
 * gets `guard(...)` as its onRequest hook; the route's `config.permission` (or the group's read/write
 * default) names what it needs. An admin API token must carry that permission in its scopes; a person
 * (session cookie) must hold an admin role that bundles it, as decide() answers for `admin:<role>` —
 * so assignments, PIM activations and conditional access apply as they do to AWS roles.
 */
export class AdminAccess {
  constructor(private readonly deps: AdminAccessDeps) {}

  guard(defaults: GroupPermissions) {
    return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const declared = req.routeOptions.config?.permission;
      const permission: Permission = declared ?? (READS.has(req.method) ? defaults.read : defaults.write);
      await this.authorize(req, reply, permission);
    };
  }

  async authorize(req: FastifyRequest, reply: FastifyReply, permission: Permission): Promise<void> {
    const header = req.headers.authorization;
    if (header !== undefined) return this.authorizeToken(req, reply, header, permission);
    const caller = await this.deps.person(req);
    if (!caller) {
      reply.header('www-authenticate', 'Bearer');
      throw new Unauthorized('an admin API token, or a signed-in person holding an admin role, is required');
    }
    await this.authorizePerson(req, caller, permission);
  }

  /**
   * Whether the caller holds `permission` now, with no side effect: nothing audited, no refusal
   * counted, report-only policies not logged (decide()'s what-if). For a question a caller may ask
   * without being an admin at all, such as /readyz's full detail.
   */
  async holds(req: FastifyRequest, permission: Permission): Promise<boolean> {
    if (req.headers.authorization !== undefined) {
      const token = await this.tokenOf(req);
      if (!token || !scopesAllow(token.scopes, permission)) return false;
      return token.creatorUserId === null || this.creatorHolds(token.creatorUserId, permission);
    }
    const caller = await this.deps.person(req);
    if (!caller) return false;
    for (const role of rolesGranting(permission)) {
      const d = await this.deps.access.explain(caller.principal, { kind: 'admin', role }, signalsOf(req));
      if (d.effect === 'allow') return true;
    }
    return false;
  }

  private async authorizeToken(
    req: FastifyRequest,
    reply: FastifyReply,
    header: string,
    permission: Permission,
  ): Promise<void> {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const token = m ? await this.deps.apiTokens.authenticate(m[1]!) : null;
    if (!token) {
      reply.header('www-authenticate', m ? 'Bearer error="invalid_token"' : 'Bearer');
      throw new Unauthorized(m ? 'the bearer token is invalid, expired or revoked' : undefined);
    }
    req.actor = { type: 'api-token', id: token.id, name: token.name };
    if (!scopesAllow(token.scopes, permission)) {
      // RFC 6750 §3.1: the scope needed, so the operator knows which token to make.
      reply.header('www-authenticate', `Bearer error="insufficient_scope", scope="${permission}"`);
      return this.refuse(
        req,
        permission,
        'insufficient-scope',
        new Problem(
          403,
          'insufficient-scope',
          'Insufficient scope',
          `this API token does not carry ${permission}; create one with --scope ${permission}`,
          { permission, scopes: token.scopes },
        ),
      );
    }
    // A token a person made can do no more than that person holds now (an activation that ended, a
    // role removed, the person disabled: the token loses it too).
    if (token.creatorUserId !== null && !(await this.creatorHolds(token.creatorUserId, permission))) {
      reply.header('www-authenticate', `Bearer error="insufficient_scope", scope="${permission}"`);
      return this.refuse(
        req,
        permission,
        'token-creator-lacks-permission',
        new Problem(
          403,
          'token-creator-lacks-permission',
          'Token creator lacks the permission',
          `this API token was made by a person who no longer holds ${permission} (their admin role was removed or its activation ended); it carries no more than they do`,
          { permission, scopes: token.scopes },
        ),
      );
    }
  }

  /** Audits a refusal (rate-limited) and throws it. */
  private async refuse(
    req: FastifyRequest,
    permission: Permission,
    reason: RefusalReason,
    problem: Problem,
  ): Promise<never> {
    await this.deps.refusals?.record(req, { permission, reason, detail: problem.message });
    throw problem;
  }

  /** Does a token's creator hold this permission now by grant (first role that gives it wins)? */
  private async creatorHolds(userId: string, permission: Permission): Promise<boolean> {
    const principal = await this.deps.principalOf?.(userId);
    if (!principal) return false;
    for (const role of rolesGranting(permission))
      if (await this.deps.access.adminRoleGrant(principal, role)) return true;
    return false;
  }

  /**
   * The permissions a token's creator holds now by grant (admin roles assigned or activated; sign-in
   * conditions are judged when the token is made, not at each use), with when each ends (null: standing).
   */
  private async creatorGrants(
    token: Pick<ApiToken, 'creatorUserId'>,
  ): Promise<Map<Permission, string | null>> {
    const out = new Map<Permission, string | null>();
    if (token.creatorUserId === null || !this.deps.principalOf) return out;
    const principal = await this.deps.principalOf(token.creatorUserId);
    if (!principal) return out;
    for (const role of ADMIN_ROLE_NAMES) {
      const grant = await this.deps.access.adminRoleGrant(principal, role);
      if (!grant) continue;
      for (const p of ADMIN_ROLES[role].permissions) {
        const prev = out.get(p);
        if (prev === null) continue;
        if (prev === undefined || grant.until === null || grant.until > prev) out.set(p, grant.until);
      }
    }
    return out;
  }

  /**
   * What a new admin API token made by this request may carry and until when (docs/decisions/0041):
   * - a person: the permissions their admin roles give now (decide(), so conditional access applies),
   *   and the token ends no later than the grant behind any of `wanted` (a PIM activation's end);
   * - a token: its own scopes, bounded by its creator's rights now, and no later than it ends itself;
   * - an operator beside the config: no bound (the CLI path does not come through here).
   * `creatorUserId` is the person the new token stays bound to at every use.
   */
  async tokenBounds(
    req: FastifyRequest,
    wanted: readonly Permission[],
  ): Promise<{ creatorUserId: string | null; expiresAt: string | null }> {
    const earliest = (a: string | null, b: string | null) =>
      a === null ? b : b === null ? a : a < b ? a : b;
    if (req.actor.type === 'api-token') {
      const token = await this.tokenOf(req);
      if (!token) return { creatorUserId: null, expiresAt: null };
      let expiresAt = token.expiresAt;
      if (token.creatorUserId !== null) {
        const grants = await this.creatorGrants(token);
        for (const p of wanted) expiresAt = earliest(expiresAt, grants.get(p) ?? null);
      }
      return { creatorUserId: token.creatorUserId, expiresAt };
    }
    if (req.caller && req.caller.principal.kind === 'user') {
      const grants = await this.creatorGrants({ creatorUserId: req.caller.principal.id });
      let expiresAt: string | null = null;
      for (const p of wanted) expiresAt = earliest(expiresAt, grants.get(p) ?? null);
      return { creatorUserId: req.caller.principal.id, expiresAt };
    }
    return { creatorUserId: null, expiresAt: null };
  }

  private async tokenOf(req: FastifyRequest): Promise<ApiToken | null> {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    return m ? this.deps.apiTokens.authenticate(m[1]!) : null;
  }

  private async authorizePerson(req: FastifyRequest, caller: Caller, permission: Permission): Promise<void> {
    req.caller = caller;
    const p = caller.principal;
    req.actor =
      p.kind === 'workload'
        ? { type: 'workload', id: p.id, name: p.userName }
        : { type: 'user', id: p.id, name: p.userName };
    const roles = rolesGranting(permission);
    const stepUps: Array<{ role: AdminRole; decision: Extract<Decision, { effect: 'step-up' }> }> = [];
    for (const role of roles) {
      const decision = await this.deps.access.decide(p, { kind: 'admin', role }, signalsOf(req));
      if (decision.effect === 'allow') return;
      if (decision.effect === 'step-up') stepUps.push({ role, decision });
    }
    if (stepUps.length > 0) {
      // The role that asks least: a person with Helpdesk and Ferry Administrator may not need a key.
      const { role, decision } = stepUps.reduce((a, b) =>
        b.decision.require.length < a.decision.require.length ? b : a,
      );
      return this.refuse(
        req,
        permission,
        'step-up-required',
        new Problem(
          403,
          'step-up-required',
          'Step-up required',
          `${ADMIN_ROLES[role].title} (admin:${role}) needs ${decision.require.join(' and ')} for ${permission}: sign in again with it`,
          {
            permission,
            target: `admin:${role}`,
            require: decision.require,
            reasons: decision.reasons.map((r) => r.message),
          },
        ),
      );
    }
    return this.refuse(
      req,
      permission,
      'admin-role-required',
      new Problem(
        403,
        'admin-role-required',
        'Admin role required',
        `${p.userName} holds no admin role that gives ${permission} (roles that do: ${roles.map((r) => ADMIN_ROLES[r].title).join(', ')})`,
        { permission, roles: roles.map((r) => `admin:${r}`) },
      ),
    );
  }

  /**
   * A route a person may call with its permission, or through something the object itself grants them
   * (named as approver of this request): the caller is authenticated already (req.caller). Refuses an
   * admin API token (approvals are a person's) and, when `named` is false, a person without the
   * permission (admin-role-required or step-up-required, audited like the guard's).
   */
  async authorizePersonOr(req: FastifyRequest, permission: Permission, named: boolean): Promise<void> {
    const caller = req.caller;
    if (!caller)
      return this.refuse(
        req,
        permission,
        'approvals-need-a-person',
        new Problem(403, 'forbidden', 'Forbidden', 'only a person signed in may answer a request', {
          permission,
        }),
      );
    if (named) return;
    await this.authorizePerson(req, caller, permission);
  }

  /** Every admin role a person holds now (or could after a step-up), and the permissions the held ones give. */
  async heldBy(
    principal: CallerPrincipal,
    signals: Signals,
  ): Promise<{ adminRoles: HeldAdminRole[]; permissions: Permission[] }> {
    const adminRoles: HeldAdminRole[] = [];
    for (const role of ADMIN_ROLE_NAMES) {
      const d = await this.deps.access.decide(principal, { kind: 'admin', role }, signals);
      if (d.effect === 'deny') continue;
      adminRoles.push({
        role,
        title: ADMIN_ROLES[role].title,
        effect: d.effect,
        ...(d.effect === 'step-up' ? { require: d.require } : {}),
        reasons: d.reasons.map((r) => r.message),
      });
    }
    return {
      adminRoles,
      permissions: permissionsOf(adminRoles.filter((r) => r.effect === 'allow').map((r) => r.role)),
    };
  }

  /** The permissions of whoever authenticated this request as admin (for token creation limits). */
  async permissionsOfRequest(req: FastifyRequest): Promise<string[]> {
    if (req.actor.type === 'api-token') {
      const token = await this.tokenOf(req);
      if (!token) return [];
      if (token.creatorUserId === null) return token.scopes;
      // a token a person made holds no more than they hold now
      const grants = await this.creatorGrants(token);
      return [...grants.keys()].filter((p) => scopesAllow(token.scopes, p));
    }
    if (req.caller) return (await this.heldBy(req.caller.principal, signalsOf(req))).permissions;
    return [];
  }
}

export { isPermission, signalsOf };
