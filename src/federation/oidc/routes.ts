import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import type { FormDestinations } from '../../identity/pages/csp.js';
import { errorPage, PAGE_CSP } from '../../identity/pages/html.js';
import type { Session } from '../../identity/sessions.js';
import { loadOidcProvider } from './library.js';
import { acrOf, type OidcIssuer } from './provider.js';

export interface OidcRoutesOptions {
  issuer: OidcIssuer;
  /** the Ferry session a browser holds (its cookie), or null */
  ferrySession: (req: FastifyRequest) => Promise<Session | null>;
  /** the sign-in pages ask here where an interaction ends, to name that origin in their form-action */
  formDestinations?: FormDestinations;
}

/** `/oidc/interaction/<uid>`: the interaction a sign-in page returns to. */
const INTERACTION_PATH = /^\/oidc\/interaction\/([\w-]{1,128})(?:[?#]|$)/;

/**
 * Where the interaction behind a sign-in page ends: the redirect_uri of its authorization request,
 * checked once more against the client's registration (the proxy's client included).
 */
export async function interactionDestination(issuer: OidcIssuer, returnTo: string): Promise<string[]> {
  const uid = INTERACTION_PATH.exec(returnTo)?.[1];
  if (!uid) return [];
  const provider = await issuer.provider();
  const interaction = await provider.Interaction.find(uid);
  const redirectUri = interaction?.params?.redirect_uri;
  const clientId = interaction?.params?.client_id;
  if (typeof redirectUri !== 'string' || typeof clientId !== 'string') return [];
  const client = await provider.Client.find(clientId);
  return client?.redirectUriAllowed(redirectUri) ? [redirectUri] : [];
}

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;
const handlers = new WeakMap<Provider, Handler>();

/**
 * Mounts the OpenID provider: discovery at the root (the issuer is Ferry's public URL, as AWS IAM
 * expects of an OIDC provider), every protocol endpoint under /oidc, and the interaction that hands
 * the sign-in to Ferry's own pages (password, MFA) — one sign-in system, not two.
 */
export const oidcRoutes: FastifyPluginAsync<OidcRoutesOptions> = async (app, opts) => {
  // oidc-provider reads request bodies itself: leave the stream untouched in this scope.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));
  opts.formDestinations?.register('/oidc/interaction/', (returnTo) =>
    interactionDestination(opts.issuer, returnTo),
  );

  const forward = async (req: FastifyRequest, reply: FastifyReply) => {
    const provider = await opts.issuer.provider();
    let handler = handlers.get(provider);
    if (!handler) {
      handler = provider.callback() as Handler;
      handlers.set(provider, handler);
    }
    reply.hijack();
    reply.raw.setHeader('x-request-id', req.id);
    reply.raw.setHeader('x-content-type-options', 'nosniff');
    await handler(req.raw, reply.raw);
  };

  const hidden = { schema: { hide: true } };
  app.get('/.well-known/openid-configuration', hidden, forward);
  app.all('/oidc/*', hidden, forward);

  const page = (reply: FastifyReply, status: number, title: string, detail: string) =>
    reply
      .code(status)
      .header('content-security-policy', PAGE_CSP)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(errorPage(status, title, detail));

  app.get<{ Params: { uid: string } }>('/oidc/interaction/:uid', hidden, async (req, reply) => {
    const provider = await opts.issuer.provider();
    let details: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      details = await provider.interactionDetails(req.raw, reply.raw);
    } catch (err) {
      const { errors: oidcErrors } = await loadOidcProvider();
      if (err instanceof oidcErrors.SessionNotFound || err instanceof oidcErrors.InvalidRequest) {
        return page(
          reply,
          400,
          'Sign-in expired',
          'This sign-in request has expired or was already used. Start again from the application.',
        );
      }
      throw err;
    }
    if (details.uid !== req.params.uid) {
      return page(
        reply,
        400,
        'Sign-in mismatch',
        'This sign-in belongs to another request. Start again from the application.',
      );
    }
    const here = `/oidc/interaction/${encodeURIComponent(details.uid)}`;
    const signin = (fresh: boolean) =>
      reply.redirect(`/signin?return_to=${encodeURIComponent(here)}${fresh ? '&prompt=login' : ''}`, 303);

    if (details.prompt.name === 'login') {
      const session = await opts.ferrySession(req);
      const authTime = session ? Date.parse(session.authTime ?? session.createdAt) : 0;
      // prompt=login or an exceeded max_age: the sign-in must be newer than this request.
      const fresh = details.prompt.reasons.some((r) => r === 'login_prompt' || r === 'max_age');
      const requestedAt = (details.iat ?? 0) * 1000;
      if (!session || (fresh && authTime < requestedAt - 1000)) return signin(fresh && !!session);
      const to = await provider.interactionResult(
        req.raw,
        reply.raw,
        {
          login: {
            accountId: session.userId,
            amr: session.amr,
            acr: acrOf(session.amr),
            ts: Math.floor(authTime / 1000),
            remember: false,
          },
        },
        { mergeWithLastSubmission: false },
      );
      return reply.redirect(to, 303);
    }

    if (details.prompt.name === 'consent') {
      // Registered clients are first-party: an admin registered them, assignments say who may use what.
      const { session, params, grantId } = details;
      const grant = grantId
        ? ((await provider.Grant.find(grantId)) ??
          new provider.Grant({ accountId: session!.accountId, clientId: String(params.client_id) }))
        : new provider.Grant({ accountId: session!.accountId, clientId: String(params.client_id) });
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const savedId = await grant.save();
      const signedIn = await opts.ferrySession(req);
      if (signedIn) await opts.issuer.linkGrant(savedId, signedIn.id);
      const to = await provider.interactionResult(
        req.raw,
        reply.raw,
        { consent: { grantId: savedId } },
        { mergeWithLastSubmission: true },
      );
      return reply.redirect(to, 303);
    }
    return page(
      reply,
      400,
      'Unsupported sign-in step',
      `Ferry can't complete the step "${details.prompt.name}".`,
    );
  });
};
