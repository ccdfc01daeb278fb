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
import type { Signals } from '../access/principal.js';
import type { ApiTokens } from '../identity/api-tokens.js';
import type { Caller, CallerAuthenticator, CallerPrincipal } from '../identity/caller.js';
import { Problem, Unauthorized } from '../problem.js';

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
      throw new Problem(
        403,
        'insufficient-scope',
        'Insufficient scope',
        `this API token does not carry ${permission}; create one with --scope ${permission}`,
        { permission, scopes: token.scopes },
      );
    }
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
      throw new Problem(
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
      );
    }
    throw new Problem(
      403,
      'admin-role-required',
      'Admin role required',
      `${p.userName} holds no admin role that gives ${permission} (roles that do: ${roles.map((r) => ADMIN_ROLES[r].title).join(', ')})`,
      { permission, roles: roles.map((r) => `admin:${r}`) },
    );
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
      const header = req.headers.authorization ?? '';
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      const token = m ? await this.deps.apiTokens.authenticate(m[1]!) : null;
      return token?.scopes ?? [];
    }
    if (req.caller) return (await this.heldBy(req.caller.principal, signalsOf(req))).permissions;
    return [];
  }
}

export { isPermission, signalsOf };
