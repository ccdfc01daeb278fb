import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { SIGNIN_FORM_BODY_LIMIT } from '../../identity/pages/routes.js';
import type { SigninResult, SigninService } from '../../identity/signin.js';
import { Problem } from '../../problem.js';
import { problemResponses } from '../../problem-schema.js';
import { acrOf, type OidcIssuer } from './provider.js';

export interface DeviceSigninOptions {
  issuer: OidcIssuer;
  signin: SigninService;
}

const Body = Type.Object(
  {
    userCode: Type.String({ minLength: 4, maxLength: 32 }),
    userName: Type.String({ minLength: 1, maxLength: 256 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    otp: Type.Optional(Type.String({ pattern: '^[0-9]{6,8}$' })),
  },
  { additionalProperties: false },
);

/** What the user typed, as oidc-provider stores it (upper case, no separators). */
const normalizeUserCode = (input: string) => input.toUpperCase().replace(/\W/g, '');

/**
 * `ferry login --user UPN` (as `tsh login --auth=local`): the CLI starts a device authorization and
 * approves it here with the person's password and one-time code, through the same sign-in checks,
 * throttling and audit as the browser. Tokens still come only from the token endpoint.
 */
export const deviceSigninApi: FastifyPluginAsync<DeviceSigninOptions> = async (app, opts) => {
  app.post<{ Body: Static<typeof Body> }>(
    '/signin/device',
    {
      // Anonymous: a user code, a name, a password and a one-time code need kilobytes at most.
      bodyLimit: SIGNIN_FORM_BODY_LIMIT,
      schema: {
        tags: ['sign-in'],
        summary:
          'Approve a pending device authorization with a password and one-time code (ferry login --user)',
        body: Body,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (req, reply) => {
      const provider = await opts.issuer.provider();
      const code = await provider.DeviceCode.findByUserCode(normalizeUserCode(req.body.userCode));
      if (!code || code.isExpired || code.accountId || code.error) {
        throw new Problem(
          400,
          'invalid-user-code',
          'Invalid device code',
          'the device code is unknown, expired or already used: run `ferry login` again',
        );
      }
      const meta = { ip: req.ip, userAgent: req.headers['user-agent'] ?? null, requestId: req.id };
      let result: SigninResult = await opts.signin.password(req.body.userName, req.body.password, meta);
      if (result.status === 'second-factor-required') {
        if (!req.body.otp) {
          throw new Problem(
            401,
            'mfa-required',
            'One-time code required',
            'enter the 6-digit code from your authenticator app',
          );
        }
        result = await opts.signin.secondFactor(result.token, req.body.otp, meta);
      }
      if (result.status === 'enrollment-required') {
        throw new Problem(
          403,
          'mfa-enrollment-required',
          'Authenticator required',
          'your organisation requires an authenticator: set it up once by signing in to Ferry in a browser, or run `ferry login` without --user',
        );
      }
      if (result.status !== 'signed-in') {
        reply.header('www-authenticate', 'Basic realm="ferry"');
        throw new Problem(
          401,
          'invalid-credentials',
          'Sign-in failed',
          'Sign-in failed. Check your details and try again, or try again later.',
        );
      }
      const { session } = result;
      const scope = typeof code.params?.scope === 'string' ? code.params.scope : 'openid';
      const grant = new provider.Grant({ accountId: session.userId, clientId: code.clientId });
      grant.addOIDCScope(scope);
      const authTime = Math.floor(Date.parse(session.authTime ?? session.createdAt) / 1000);
      const grantId = await grant.save();
      // The CLI's tokens end with this sign-in: revoking it (ferry sessions revoke, an admin) ends them.
      await opts.issuer.linkGrant(grantId, session.id);
      Object.assign(code, {
        accountId: session.userId,
        acr: acrOf(session.amr),
        amr: session.amr,
        authTime,
        grantId,
        scope,
      });
      await code.save();
      return reply.code(204).send();
    },
  );
};
