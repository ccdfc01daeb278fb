import type {} from '@fastify/swagger'; // OpenAPI keys (tags, summary, security) on route schemas
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { CallerAuthenticator } from '../identity/caller.js';
import type { CsrfTokens } from '../identity/csrf.js';
import { Nullable } from '../nullable-schema.js';
import { Unauthorized } from '../problem.js';
import { problemResponses } from '../problem-schema.js';
import { type AdminAccess, signalsOf } from './admin-access.js';

export interface SessionApiOptions {
  /** the browser session cookie */
  person: CallerAuthenticator;
  admin: AdminAccess;
  csrf: CsrfTokens;
  cookieName: string;
}

export const SessionSchema = Type.Object({
  user: Type.Object({
    id: Type.String(),
    userName: Type.String(),
    displayName: Nullable(Type.String()),
  }),
  csrfToken: Type.String({ description: 'send as the x-csrf-token header on every unsafe /api/ call' }),
  /** RFC 8176 methods of this sign-in */
  amr: Type.Array(Type.String()),
  permissions: Type.Array(Type.String(), { description: 'what the admin roles you hold now allow' }),
  adminRoles: Type.Array(
    Type.Object({
      role: Type.String({ description: 'e.g. ferry-administrator (the target is admin:<role>)' }),
      title: Type.String(),
      effect: Type.Union([Type.Literal('allow'), Type.Literal('step-up')], {
        description: 'step-up: held, but this sign-in must be stronger (see require) before it counts',
      }),
      require: Type.Optional(Type.Array(Type.String())),
      reasons: Type.Array(Type.String()),
    }),
  ),
});
export type SessionInfo = Static<typeof SessionSchema>;

/** `GET /api/v1/session`: who the browser is signed in as, its CSRF token, and what it may administer. */
export const sessionApi: FastifyPluginAsync<SessionApiOptions> = async (app, opts) => {
  app.get(
    '/session',
    {
      schema: {
        tags: ['session'],
        summary:
          'The signed-in browser session: the person, the CSRF token for unsafe calls, admin roles and permissions',
        response: { 200: SessionSchema, ...problemResponses },
      },
    },
    async (req, reply): Promise<SessionInfo> => {
      const caller = await opts.person(req);
      const cookie = req.cookies?.[opts.cookieName];
      if (!caller || !cookie || caller.principal.kind !== 'user') {
        reply.header('www-authenticate', 'Bearer');
        throw new Unauthorized('not signed in: sign in at /signin first');
      }
      const p = caller.principal as typeof caller.principal & { displayName?: string | null };
      const held = await opts.admin.heldBy(p, signalsOf(req));
      reply.header('cache-control', 'no-store');
      return {
        user: { id: p.id, userName: p.userName, displayName: p.displayName ?? null },
        csrfToken: opts.csrf.tokenFor(cookie),
        amr: p.amr,
        permissions: held.permissions,
        adminRoles: held.adminRoles,
      };
    },
  );
};
