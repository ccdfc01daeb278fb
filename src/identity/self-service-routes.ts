import type {} from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditContext } from '../audit/actor.js';
import { Nullable } from '../nullable-schema.js';
import { Problem } from '../problem.js';
import { problemResponses } from '../problem-schema.js';
import type { AccountHolder, AccountSecurity } from './account-security.js';
import type { Caller } from './caller.js';
import { qrDataUri } from './pages/qr.js';
import type { SessionStore } from './sessions.js';

export interface SelfServiceApiOptions {
  sessions: SessionStore;
  authenticate: preHandlerAsyncHookHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /** sign-in methods and password (the Account page); without it only sessions are served */
  security?: AccountSecurity;
}

const MySession = Type.Object({
  id: Type.String(),
  createdAt: Type.String(),
  lastSeenAt: Type.String(),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  amr: Type.Array(Type.String()),
  current: Type.Boolean({ description: 'the session this request came with' }),
});

/**
 * A person's own account under /api/v1/me (the web console's Account page): their sign-in sessions,
 * and signing one out, which also ends what was issued under it (as the account page's form does).
 */
export const selfServiceApi: FastifyPluginAsync<SelfServiceApiOptions> = async (app, opts) => {
  const tags = ['account'];
  const security = [{ bearer: [] }];
  const me = (req: FastifyRequest) => req.caller as Caller;

  app.get(
    '/me/sessions',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Your active sign-in sessions',
        security,
        response: { 200: Type.Object({ items: Type.Array(MySession) }), ...problemResponses },
      },
    },
    async (req) => {
      const caller = me(req);
      const list = await opts.sessions.listForUser(caller.principal.id);
      return {
        items: list.map((s) => ({
          id: s.id,
          createdAt: s.createdAt,
          lastSeenAt: s.lastSeenAt,
          ip: s.ip,
          userAgent: s.userAgent,
          amr: s.amr,
          current: s.id === caller.sessionId,
        })),
      };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/me/sessions/:id/revoke',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Sign out one of your sessions (what was issued under it ends too)',
        security,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      // onlyUserId: another person's session id is "not found", never revoked.
      await opts.sessions.revoke(
        opts.auditContext(req),
        req.params.id,
        'signed out by the user',
        me(req).principal.id,
      );
      return reply.code(204).send();
    },
  );
  if (opts.security) registerSecurityRoutes(app, opts, opts.security, tags, security);
};

const Passkey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Type.String(),
  lastUsedAt: Nullable(Type.String()),
});

const SecurityStatus = Type.Object({
  hasPassword: Type.Boolean({
    description: 'a local account (people signing in through Entra ID have none)',
  }),
  totp: Type.Object({ enrolled: Type.Boolean() }),
  passkeys: Type.Array(Passkey),
  recoveryCodesRemaining: Type.Integer(),
  mfaRequired: Type.Boolean({
    description: 'the sign-in policy requires a second factor: the last one cannot be removed',
  }),
  sessionHasMfa: Type.Boolean({
    description: 'this session proved a second factor',
  }),
  stepUpRequired: Type.Boolean({
    description:
      'a change needs a step-up first (stepUpUrl): this session has not proved the second factor the person has, or its last authentication is older than signin.accountChangeMaxAge',
  }),
  stepUpUrl: Type.String({ description: 'the page that gives this session a second factor and comes back' }),
  webauthn: Type.Union([Type.Object({ rpId: Type.String(), origin: Type.String() }), Type.Null()], {
    description: 'the relying party passkeys are bound to (null: passkeys are not offered)',
  }),
});

/** Passkey registration bodies carry an attestation (with its certificate chain): more than a form. */
const PASSKEY_BODY_LIMIT = 64 * 1024;

function registerSecurityRoutes(
  app: Parameters<FastifyPluginAsync<SelfServiceApiOptions>>[0],
  opts: SelfServiceApiOptions,
  account: AccountSecurity,
  tags: string[],
  security: Array<Record<string, string[]>>,
) {
  const holder = (req: FastifyRequest): AccountHolder => {
    const caller = req.caller as Caller;
    return { userId: caller.principal.id, amr: caller.principal.amr, authTime: caller.principal.authTime };
  };
  /** Changes to how a person signs in come from their browser session (cookie + CSRF), not from a CLI token. */
  const changer = (req: FastifyRequest): AccountHolder => {
    const caller = req.caller as Caller;
    if (caller.via !== 'browser-session' || caller.principal.kind !== 'user')
      throw new Problem(
        403,
        'browser-session-required',
        'Use the web console',
        'sign-in methods and passwords are changed from a browser session (the Account page), not with an access token',
      );
    return holder(req);
  };
  const noContent = { 204: Type.Null(), ...problemResponses };

  app.get(
    '/me/security',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'How you sign in: password, authenticator app, passkeys, recovery codes left',
        security,
        response: { 200: SecurityStatus, ...problemResponses },
      },
    },
    async (req) => {
      const caller = req.caller as Caller;
      if (caller.principal.kind !== 'user')
        throw new Problem(404, 'not-found', 'Not Found', 'a workload has no account');
      return account.status(holder(req));
    },
  );

  app.post(
    '/me/totp',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary:
          'Start adding an authenticator app: the key (and QR code) to scan, confirmed by /me/totp/confirm',
        description:
          'Needs a session that proved your second factor when you have one (403 step-up-required). 409 totp-already-enrolled when you have an app already.',
        security,
        body: Type.Optional(Type.Object({})),
        response: {
          200: Type.Object({
            secret: Type.String({ description: 'base32, to type into the app' }),
            uri: Type.String({ description: 'otpauth:// URI' }),
            qr: Type.String({ description: 'the URI as a QR code (data: URI of an SVG image)' }),
          }),
          ...problemResponses,
        },
      },
    },
    async (req) => {
      const enrollment = await account.startTotp(opts.auditContext(req), changer(req));
      return { secret: enrollment.secret, uri: enrollment.uri, qr: await qrDataUri(enrollment.uri) };
    },
  );

  app.post<{ Body: { code: string } }>(
    '/me/totp/confirm',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Confirm the new authenticator app with the code it shows',
        description: '400 totp-code-invalid when the code does not match.',
        security,
        body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 16 }) }),
        response: noContent,
      },
    },
    async (req, reply) => {
      await account.confirmTotp(opts.auditContext(req), changer(req), req.body.code);
      return reply.code(204).send();
    },
  );

  app.delete(
    '/me/totp',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Remove your authenticator app',
        description:
          '409 last-mfa-method when the sign-in policy requires a second factor and this is your only one; 403 step-up-required when this session has not proved it.',
        security,
        response: noContent,
      },
    },
    async (req, reply) => {
      await account.removeTotp(opts.auditContext(req), changer(req));
      return reply.code(204).send();
    },
  );

  app.post(
    '/me/passkeys/options',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Options for navigator.credentials.create() to register a passkey or security key',
        description:
          'WebAuthn PublicKeyCredentialCreationOptions as JSON (binary fields base64url). The relying party is Ferry’s public URL: registration works only in a browser on that origin (https, or http://localhost).',
        security,
        body: Type.Optional(Type.Object({})),
        response: { 200: Type.Object({}, { additionalProperties: true }), ...problemResponses },
      },
    },
    async (req, reply) =>
      reply.header('cache-control', 'no-store').send(await account.passkeyOptions(changer(req))),
  );

  app.post<{ Body: { name?: string; response: Record<string, unknown> } }>(
    '/me/passkeys',
    {
      onRequest: opts.authenticate,
      bodyLimit: PASSKEY_BODY_LIMIT,
      schema: {
        tags,
        summary: 'Register a passkey or security key (the result of navigator.credentials.create())',
        description:
          '400 webauthn-rejected when the browser’s answer does not verify (wrong origin, stale challenge).',
        security,
        body: Type.Object({
          name: Type.Optional(Type.String({ maxLength: 64 })),
          response: Type.Object({}, { additionalProperties: true, description: 'RegistrationResponseJSON' }),
        }),
        response: { 201: Passkey, ...problemResponses },
      },
    },
    async (req, reply) => {
      const me = changer(req);
      const id = await account.registerPasskey(
        opts.auditContext(req),
        me,
        req.body.response as never,
        req.body.name ?? 'Passkey',
      );
      const created = (await account.status(me)).passkeys.find((p) => p.id === id);
      return reply.code(201).send(created);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/me/passkeys/:id',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Remove one of your passkeys or security keys',
        description:
          '409 last-mfa-method when the sign-in policy requires a second factor and this is your only one.',
        security,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 1024 }) }),
        response: noContent,
      },
    },
    async (req, reply) => {
      await account.removePasskey(opts.auditContext(req), changer(req), req.params.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/me/recovery-codes',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Create ten new recovery codes (shown only in this answer; the earlier ones stop working)',
        security,
        body: Type.Optional(Type.Object({})),
        response: { 200: Type.Object({ codes: Type.Array(Type.String()) }), ...problemResponses },
      },
    },
    async (req, reply) =>
      reply
        .header('cache-control', 'no-store')
        .send({ codes: await account.newRecoveryCodes(opts.auditContext(req), changer(req)) }),
  );

  app.post<{ Body: { currentPassword: string; newPassword: string } }>(
    '/me/password',
    {
      onRequest: opts.authenticate,
      schema: {
        tags,
        summary: 'Change your password (local accounts): every session ends, sign in again with the new one',
        description:
          '400 current-password-wrong (counts against the account like a failed sign-in), 400 password-policy, 409 no-local-password for people who sign in through their identity provider.',
        security,
        body: Type.Object({
          currentPassword: Type.String({ minLength: 1, maxLength: 1024 }),
          newPassword: Type.String({ minLength: 1, maxLength: 1024 }),
        }),
        response: noContent,
      },
    },
    async (req, reply) => {
      await account.changePassword(
        opts.auditContext(req),
        changer(req),
        req.body.currentPassword,
        req.body.newPassword,
      );
      return reply.code(204).send();
    },
  );
}
