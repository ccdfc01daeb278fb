import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Caller } from '../identity/caller.js';
import { Nullable } from '../nullable-schema.js';
import { problemResponses } from '../problem-schema.js';
import type { AccessDecider } from './decide.js';
import type { SshLogins } from './ssh-logins.js';

/** An application a person may open: a proxied app (its URL) or a SAML SP (IdP-initiated launch). */
export interface LaunchableApp {
  kind: 'proxy' | 'saml';
  /** the `app:<name>` target decide() is asked about */
  name: string;
  label: string;
  launchUrl: string;
}

export interface MyAccessApiOptions {
  access: AccessDecider;
  sshLogins: SshLogins;
  /** every registered app; this route keeps those decide() allows */
  apps: () => Promise<LaunchableApp[]>;
  authenticate: preHandlerAsyncHookHandler;
}

const MyApp = Type.Object({
  kind: Type.Union([Type.Literal('proxy'), Type.Literal('saml')]),
  name: Type.String({ description: 'the app target name (`app:<name>`)' }),
  label: Type.String(),
  launchUrl: Type.String({ description: 'open this in the browser: the proxied URL, or /saml/launch?sp=…' }),
});
const MySshLogin = Type.Object({
  hosts: Type.String({ description: 'host glob the logins are valid on' }),
  logins: Type.Array(Type.String()),
  portForwarding: Type.Boolean(),
  maxDurationSeconds: Nullable(Type.Integer()),
});
export const MyAccessSchema = Type.Object({
  apps: Type.Array(MyApp),
  ssh: Type.Array(MySshLogin),
});
export type MyAccess = Static<typeof MyAccessSchema>;

/**
 * `GET /api/v1/access/mine`: the apps and SSH logins the caller may use right now (the AWS roles are
 * `GET /api/v1/aws/entitlements`). Filtered by the same decide() every issuer asks.
 */
export const myAccessApi: FastifyPluginAsync<MyAccessApiOptions> = async (app, opts) => {
  app.get(
    '/access/mine',
    {
      onRequest: opts.authenticate,
      schema: {
        tags: ['access'],
        summary: 'The apps and SSH logins you may use now (your AWS roles: /aws/entitlements)',
        security: [{ bearer: [] }],
        response: { 200: MyAccessSchema, ...problemResponses },
      },
    },
    async (req: FastifyRequest): Promise<MyAccess> => {
      const caller = req.caller as Caller;
      const principal = caller.principal;
      if (principal.kind !== 'user') return { apps: [], ssh: [] };
      const signals = {
        ip: req.ip,
        client: 'browser' as const,
        userAgent: req.headers['user-agent'] ?? null,
      };
      const apps: MyAccess['apps'] = [];
      for (const a of await opts.apps()) {
        const decision = await opts.access.decide(principal, { kind: 'app', name: a.name }, signals);
        if (decision.effect !== 'deny') apps.push(a);
      }
      const mappings = await opts.sshLogins.forGroups(principal.groups.map((g) => g.id));
      const ssh = mappings.map((m) => ({
        hosts: m.hosts,
        logins: m.logins,
        portForwarding: m.portForwarding,
        maxDurationSeconds: m.maxDuration,
      }));
      return { apps, ssh };
    },
  );
};
