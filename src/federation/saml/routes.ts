import { randomUUID } from 'node:crypto';
import type {} from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AwsAccounts } from '../../access/aws-accounts.js';
import { AwsIdentityCollision, awsIdentityOf } from '../../access/aws-identity.js';
import type { AccessDecider } from '../../access/decide.js';
import type { Decision } from '../../access/decision.js';
import { formatTarget, type Target } from '../../access/targets.js';
import { type Actor, anonymous } from '../../audit/actor.js';
import { recordIssued } from '../../audit/issued.js';
import { appendAudit } from '../../audit/ledger.js';
import { authnMeaningOf, SIGN_IN_METHODS } from '../../authn/amr.js';
import type { Clock } from '../../clock.js';
import { errorPage, html, PAGE_CSP, page } from '../../identity/pages/html.js';
import { stepUpUrl } from '../../identity/pages/step-up.js';
import { type DirectoryPrincipal, principalOf } from '../../identity/principal-of.js';
import type { Session, SessionStore } from '../../identity/sessions.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { SigningKeys } from '../../keys/signing-keys.js';
import type { Store } from '../../store/open.js';
import { mappedAttributes, nameIdFor } from './attributes.js';
import { type AuthnContextAnswer, chooseAuthnContext, type RequestedAuthnContext } from './authn-context.js';
import {
  AUTHN_REQUEST_LIMITS,
  parsePostAuthnRequest,
  parseRedirectAuthnRequest,
  type ReceivedAuthnRequest,
  verifyAuthnRequestSignature,
} from './authn-request.js';
import { AUTOPOST_SCRIPT, autoPostCsp, autoPostPage } from './autopost.js';
import { AWS_SAML_AUDIENCE, awsAttributes, clampSessionDuration } from './aws-attributes.js';
import { buildIdpMetadata } from './idp-metadata.js';
import { SAML_STATUS } from './request-errors.js';
import { buildSignedResponse, NAMEID_FORMAT, type SamlAttribute } from './response.js';
import type { ServiceProvider, ServiceProviders } from './service-providers.js';
import { buildStatusResponse } from './status-response.js';
import { InvalidXml } from './xml.js';

export interface SamlRoutesOptions {
  store: Store;
  clock: Clock;
  masterKey: MasterKey;
  signingKeys: SigningKeys;
  serviceProviders: ServiceProviders;
  accounts: AwsAccounts;
  access: AccessDecider;
  sessions: SessionStore;
  cookieName: string;
  publicUrl: string;
  /** validity of an assertion and its bearer confirmation, seconds */
  assertionLifetimeSeconds?: number;
  /**
   * The demo only: post AWS console responses here instead of the partition's sign-in endpoint (the
   * local AWS has no console; the demo's stand-in page exchanges the response with STS).
   */
  awsConsoleSigninUrl?: string;
  /** false when no WebAuthn relying party is configured (default true: Ferry always has one) */
  phishingResistantAvailable?: boolean;
}

/** An SP-initiated request waiting for the person to sign in: sealed, so it can't be forged or read. */
interface PendingSso {
  spId: string;
  requestId: string;
  acsUrl: string;
  relayState?: string;
  expiresAt: number;
  /** ForceAuthn: only a sign-in at or after this time (ms) will do */
  authAfter?: number;
  /** RequestedAuthnContext, to be met (stepping up) or answered with NoAuthnContext */
  requested?: RequestedAuthnContext;
  /** IsPassive: nothing may be shown, so a needed step-up is answered with NoPassive */
  isPassive?: boolean;
  /** how many step-ups this request already sent the person to (a loop ends in NoAuthnContext) */
  stepUps?: number;
  /** IdP-initiated: no InResponseTo */
  unsolicited?: boolean;
}
const PENDING_CONTEXT = 'saml-sso-pending';
const PENDING_TTL_MS = 10 * 60_000;

type AwsRoleTarget = Extract<Target, { kind: 'aws-role' }>;

/** Ferry as a SAML 2.0 identity provider: metadata, the AWS console (IdP-initiated) and SP-initiated SSO. */
export const samlRoutes: FastifyPluginAsync<SamlRoutesOptions> = async (app, opts) => {
  const { store, clock, signingKeys, serviceProviders, accounts, access, sessions } = opts;
  const entityId = `${opts.publicUrl}/saml/metadata`;
  const ssoUrl = `${opts.publicUrl}/saml/sso`;
  const lifetime = opts.assertionLifetimeSeconds ?? 300;
  await app.register(fastifyFormbody, { bodyLimit: 256 * 1024 });

  const htmlPage = (reply: FastifyReply, status: number, title: string, body: ReturnType<typeof html>) =>
    reply
      .code(status)
      .header('content-security-policy', PAGE_CSP)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(page(title, body));

  const currentSession = async (req: FastifyRequest): Promise<Session | null> => {
    const token = req.cookies[opts.cookieName];
    return token ? sessions.resolve(token) : null;
  };
  const toSignin = (reply: FastifyReply, returnTo: string, forceLogin = false) =>
    reply.redirect(
      `/signin?${forceLogin ? 'prompt=login&' : ''}return_to=${encodeURIComponent(returnTo)}`,
      303,
    );
  const signals = (req: FastifyRequest) => ({
    client: 'browser' as const,
    ip: req.ip,
    userAgent: req.headers['user-agent'] ?? null,
  });
  const userActor = (p: DirectoryPrincipal): Actor => ({ type: 'user', id: p.id, name: p.userName });

  const refuse = async (
    req: FastifyRequest,
    reply: FastifyReply,
    who: DirectoryPrincipal,
    target: string,
    reasons: string[],
  ) => {
    await store.db.transaction().execute((trx) =>
      appendAudit(trx, store.engine, clock, {
        type: 'saml.assertion',
        outcome: 'failure',
        actor: userActor(who),
        subject: who.userName,
        ip: req.ip,
        requestId: req.id,
        data: { target, reasons },
      }),
    );
    return htmlPage(
      reply,
      403,
      'Access denied',
      html`<h1>You can't open ${target}</h1><ul class="error" role="alert">${reasons.map((r) => html`<li>${r}</li>`)}</ul>
<p>Ask your administrator for access, or <a href="/apps/aws-console">see the AWS roles you have</a>.</p>`,
    );
  };

  /** Signs and records one assertion, then posts it to the relying party. */
  const issue = async (
    req: FastifyRequest,
    reply: FastifyReply,
    who: DirectoryPrincipal,
    session: Session,
    a: {
      destination: string;
      audience: string;
      inResponseTo?: string;
      nameId: { value: string; format: string };
      attributes: SamlAttribute[];
      target: string;
      relayState?: string;
      details: Record<string, unknown>;
      label: string;
      /** also sign the Response: SPs may insist; AWS needs only the Assertion signed */
      signResponse: boolean;
      /** what the assertion says about how the person signed in */
      authnContextClassRef: string;
      /** the Content-Security-Policy of the posting page */
      csp: string;
    },
  ) => {
    const key = await signingKeys.current('saml');
    const now = clock.now();
    let response: ReturnType<typeof buildSignedResponse>;
    try {
      response = buildSignedResponse(
        {
          issuer: entityId,
          destination: a.destination,
          recipient: a.destination,
          audience: a.audience,
          inResponseTo: a.inResponseTo,
          nameId: a.nameId,
          sessionIndex: session.id,
          authnInstant: new Date(session.authTime ?? session.createdAt),
          authnContextClassRef: a.authnContextClassRef,
          attributes: a.attributes,
          now,
          assertionLifetimeSeconds: lifetime,
          sessionNotOnOrAfter: new Date(session.absoluteExpiresAt),
          signResponse: a.signResponse,
        },
        key,
      );
    } catch (err) {
      // Directory data XML can't carry (control characters in a name) refuses this one assertion.
      if (err instanceof InvalidXml) return refuse(req, reply, who, a.target, [err.message]);
      throw err;
    }
    await store.db.transaction().execute(async (trx) => {
      await recordIssued(trx, clock, {
        kind: 'saml-assertion',
        userId: who.id,
        subject: who.userName,
        target: a.target,
        audience: a.audience,
        externalId: response.assertionId,
        details: {
          ...a.details,
          responseId: response.responseId,
          destination: a.destination,
          signingKey: key.id,
        },
        expiresAt: response.notOnOrAfter,
      });
      await appendAudit(trx, store.engine, clock, {
        type: 'saml.assertion',
        outcome: 'success',
        actor: userActor(who),
        subject: who.userName,
        ip: req.ip,
        requestId: req.id,
        data: {
          target: a.target,
          assertionId: response.assertionId,
          audience: a.audience,
          authnContext: a.authnContextClassRef,
          ...a.details,
        },
      });
    });
    const fields: Record<string, string> = { SAMLResponse: response.base64 };
    if (a.relayState !== undefined) fields.RelayState = a.relayState;
    return reply
      .code(200)
      .header('content-security-policy', a.csp)
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(autoPostPage(a.destination, fields, a.label));
  };

  app.get('/static/saml-autopost.js', { schema: { hide: true } }, async (_req, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(AUTOPOST_SCRIPT),
  );

  app.get('/saml/metadata', { schema: { hide: true } }, async (_req, reply) => {
    const keys = await signingKeys.published('saml');
    const xml = buildIdpMetadata({ entityId, ssoRedirectUrl: ssoUrl, ssoPostUrl: ssoUrl, keys });
    return reply
      .type('application/samlmetadata+xml; charset=utf-8')
      .header('content-disposition', 'inline; filename="ferry-idp-metadata.xml"')
      .send(xml);
  });

  // ---- The AWS console, IdP-initiated --------------------------------------------------------

  app.get<{ Querystring: { account?: string; role?: string; all?: string } }>(
    '/apps/aws-console',
    { schema: { hide: true } },
    async (req, reply) => {
      const session = await currentSession(req);
      if (!session) return toSignin(reply, req.url);
      const who = await principalOf(store.db, session.userId, session);
      const { account: accountRef, role } = req.query;
      let chosen: Array<{ target: AwsRoleTarget; decision: Extract<Decision, { effect: 'allow' }> }>;
      if (accountRef || role) {
        const account = accountRef ? await accounts.find(store.db, accountRef) : null;
        const target: AwsRoleTarget = {
          kind: 'aws-role',
          account: account?.id ?? accountRef ?? '',
          role: role ?? '',
        };
        if (!account || !role)
          return refuse(req, reply, who, formatTarget(target), ['no such AWS account or role is registered']);
        const decision = await access.decide(who, target, signals(req));
        // Conditional access wants more (MFA, a fresh sign-in): ask for it and come back here.
        if (decision.effect === 'step-up') return reply.redirect(stepUpUrl(decision.require, req.url), 303);
        if (decision.effect !== 'allow')
          return refuse(
            req,
            reply,
            who,
            formatTarget(target),
            decision.reasons.map((r) => r.message),
          );
        chosen = [{ target, decision }];
      } else {
        const all = await access.entitlements(who, signals(req));
        const entitled = all.filter(
          (e): e is { target: AwsRoleTarget; decision: Extract<Decision, { effect: 'allow' }> } =>
            e.decision.effect === 'allow',
        );
        const stepUps = all.flatMap((e) => (e.decision.effect === 'step-up' ? [e.decision] : []));
        if (entitled.length === 0 && stepUps.length > 0)
          return reply.redirect(stepUpUrl([...new Set(stepUps.flatMap((d) => d.require))], req.url), 303);
        if (entitled.length === 0)
          return refuse(req, reply, who, 'the AWS console', [
            'no AWS role is assigned to you or your groups',
          ]);
        if ((entitled.length > 1 || stepUps.length > 0) && req.query.all === undefined)
          return rolePicker(
            reply,
            all.map((e) => e.target),
          );
        chosen = entitled;
      }

      const resolved = await Promise.all(
        chosen.map(async (c) => ({ ...c, ...(await accounts.role(c.target.account, c.target.role)) })),
      );
      const partition = resolved[0]!.account.partition;
      const samePartition = resolved.filter((r) => r.account.partition === partition);
      let awsIdentity: string;
      try {
        awsIdentity = await awsIdentityOf(store.db, clock, who);
      } catch (err) {
        if (!(err instanceof AwsIdentityCollision)) throw err;
        return refuse(req, reply, who, samePartition.map((r) => formatTarget(r.target)).join(', '), [
          err.message,
        ]);
      }
      let attributes: SamlAttribute[];
      let duration: number;
      try {
        duration = clampSessionDuration(
          undefined,
          Math.min(...samePartition.map((r) => r.role.maxSessionDuration)),
          Math.min(...samePartition.map((r) => r.decision.maxDuration)),
        );
        // Tags every chosen decision agrees on (one assertion carries one set for all its roles).
        const tags = Object.fromEntries(
          Object.entries(samePartition[0]!.decision.sessionTags).filter(([k, v]) =>
            samePartition.every((r) => r.decision.sessionTags[k] === v),
          ),
        );
        attributes = awsAttributes({
          roles: samePartition.map((r) => ({ roleArn: r.role.arn, providerArn: r.account.samlProviderArn })),
          sessionName: awsIdentity,
          sourceIdentity: awsIdentity,
          sessionDurationSeconds: duration,
          principalTags: tags,
          transitiveTagKeys: Object.keys(tags),
        });
      } catch (err) {
        return refuse(req, reply, who, samePartition.map((r) => formatTarget(r.target)).join(', '), [
          (err as Error).message,
        ]);
      }
      const targets = samePartition.map((r) => formatTarget(r.target));
      return issue(req, reply, who, session, {
        destination: opts.awsConsoleSigninUrl ?? samePartition[0]!.account.signinEndpoint,
        audience: AWS_SAML_AUDIENCE,
        nameId: { format: NAMEID_FORMAT.persistent, value: who.id },
        attributes,
        target: targets.join(','),
        details: {
          roles: samePartition.map((r) => r.role.arn),
          sourceIdentity: awsIdentity,
          sessionDuration: duration,
        },
        label: `Signing you in to AWS as ${targets.join(', ')}.`,
        // AWS verifies the Assertion's signature; one RSA operation per sign-in instead of two.
        signResponse: false,
        authnContextClassRef: authnMeaningOf(session.amr).samlAuthnContext,
        // AWS's sign-in page redirects on to the console (another origin): https: for those redirects.
        csp: autoPostCsp(opts.awsConsoleSigninUrl ?? samePartition[0]!.account.signinEndpoint, {
          followRedirects: true,
        }),
      });
    },
  );

  const rolePicker = (reply: FastifyReply, targets: AwsRoleTarget[]) =>
    htmlPage(
      reply,
      200,
      'Choose an AWS role',
      html`<h1>Choose an AWS role</h1>
<table id="roles"><thead><tr><th>Account</th><th>Role</th><th></th></tr></thead><tbody>
${targets.map(
  (t) =>
    html`<tr><td>${t.account}</td><td>${t.role}</td><td><a href="/apps/aws-console?account=${t.account}&amp;role=${encodeURIComponent(t.role)}">Open console</a></td></tr>`,
)}
</tbody></table>
<p class="muted"><a href="/apps/aws-console?all=1">Let AWS ask me</a> (sends every role; AWS shows its own picker)</p>`,
    );

  // ---- SP-initiated SSO (IAM Identity Center and any SAML SP) --------------------------------

  /** A status-only Response posted back to the SP's (registered) ACS: signed unless the SP opted out. */
  const sendStatus = async (
    reply: FastifyReply,
    sp: ServiceProvider,
    pending: PendingSso,
    status: readonly [string, string?],
    message: string,
  ) => {
    const key = sp.signStatusResponses ? await signingKeys.current('saml') : undefined;
    const response = buildStatusResponse(
      {
        issuer: entityId,
        destination: pending.acsUrl,
        inResponseTo: pending.requestId,
        status,
        message,
        now: clock.now(),
      },
      key,
    );
    await store.db.transaction().execute((trx) =>
      appendAudit(trx, store.engine, clock, {
        type: 'saml.status-response',
        outcome: 'failure',
        actor: anonymous,
        subject: sp.entityId,
        requestId: reply.request.id,
        ip: reply.request.ip,
        data: {
          sp: sp.entityId,
          inResponseTo: pending.requestId,
          status: [...status],
          message,
          signed: !!key,
        },
      }),
    );
    const fields: Record<string, string> = { SAMLResponse: response.base64 };
    if (pending.relayState !== undefined) fields.RelayState = pending.relayState;
    return reply
      .header('content-security-policy', autoPostCsp(pending.acsUrl))
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(autoPostPage(pending.acsUrl, fields, `Returning to ${sp.name}.`));
  };

  const phishingResistantAvailable = opts.phishingResistantAvailable ?? true;
  const contextFor = (sp: ServiceProvider, pending: PendingSso, amr: readonly string[]): AuthnContextAnswer =>
    chooseAuthnContext({
      requested: pending.requested,
      spMinimum: sp.minimumAuthnContext,
      amr,
      phishingResistantAvailable,
    });
  const sealPending = (pending: PendingSso) =>
    encodeURIComponent(opts.masterKey.seal(JSON.stringify(pending), PENDING_CONTEXT));

  const continueSso = async (req: FastifyRequest, reply: FastifyReply, authn: ReceivedAuthnRequest) => {
    const sp = await serviceProviders.findByEntityId(authn.issuer);
    const signature = verifyAuthnRequestSignature(authn, sp);
    const acs = serviceProviders.resolveAcs(sp, authn.acsUrl, authn.acsIndex);
    // Each request once: its ID is kept (in the database, for every instance) for as long as its
    // IssueInstant could be accepted: it is at most maxFutureSkew ahead of now, and accepted until
    // maxAge after it. A captured request cannot be sent again.
    await serviceProviders.rememberRequest(
      sp.entityId,
      authn.id,
      new Date(clock.now().getTime() + AUTHN_REQUEST_LIMITS.maxAgeMs + AUTHN_REQUEST_LIMITS.maxFutureSkewMs),
    );
    const pending: PendingSso = {
      spId: sp.id,
      requestId: authn.id,
      acsUrl: acs.url,
      relayState: authn.relayState,
      expiresAt: clock.now().getTime() + PENDING_TTL_MS,
    };
    // No slack: a session signed in even a moment before this request is not the fresh sign-in asked for
    // (a second's slack let a sign-in made just before ForceAuthn through without a password).
    if (authn.forceAuthn) pending.authAfter = clock.now().getTime();
    if (authn.requestedAuthnContext) pending.requested = authn.requestedAuthnContext;
    if (authn.isPassive) pending.isPassive = true;
    req.log.info(
      { sp: sp.entityId, requestId: authn.id, binding: authn.binding, signature },
      'saml authn request',
    );
    // A context no sign-in could meet is answered at once, before anyone is asked to sign in.
    const best = contextFor(sp, pending, SIGN_IN_METHODS['password + security key or passkey']!);
    if (best.kind === 'impossible')
      return sendStatus(
        reply,
        sp,
        pending,
        [SAML_STATUS.responder, SAML_STATUS.noAuthnContext],
        best.message,
      );
    const session = await currentSession(req);
    if (authn.isPassive && (!session || !freshEnough(session, pending))) {
      // IsPassive: the SP asked us not to show anything; nobody is signed in, so say so (NoPassive).
      return sendStatus(
        reply,
        sp,
        pending,
        [SAML_STATUS.responder, SAML_STATUS.noPassive],
        'no one is signed in',
      );
    }
    if (!session || !freshEnough(session, pending)) {
      return toSignin(
        reply,
        `/saml/sso/resume?state=${sealPending(pending)}`,
        pending.authAfter !== undefined,
      );
    }
    return respondToSp(req, reply, session, sp, pending);
  };

  /** ForceAuthn asks for a sign-in made after the request, not an older session. */
  const freshEnough = (session: Session, pending: PendingSso): boolean =>
    pending.authAfter === undefined || Date.parse(session.authTime ?? session.createdAt) >= pending.authAfter;

  const respondToSp = async (
    req: FastifyRequest,
    reply: FastifyReply,
    session: Session,
    sp: ServiceProvider,
    pending: PendingSso,
  ) => {
    const who = await principalOf(store.db, session.userId, session);
    const target: Target = { kind: 'app', name: sp.entityId };
    const decision = await access.decide(who, target, signals(req));
    const context = contextFor(sp, pending, session.amr);
    const stepUp = (require: string[]) => {
      if (pending.isPassive)
        return sendStatus(
          reply,
          sp,
          pending,
          [SAML_STATUS.responder, SAML_STATUS.noPassive],
          'a stronger sign-in is needed, and the request is passive',
        );
      // After two step-ups the person could not (or would not) meet the context: say so to the SP.
      if ((pending.stepUps ?? 0) >= 2)
        return sendStatus(
          reply,
          sp,
          pending,
          [SAML_STATUS.responder, SAML_STATUS.noAuthnContext],
          'the requested authentication context was not reached',
        );
      const next = { ...pending, stepUps: (pending.stepUps ?? 0) + 1 };
      return reply.redirect(stepUpUrl(require, `/saml/sso/resume?state=${sealPending(next)}`), 303);
    };
    if (decision.effect === 'step-up')
      return stepUp([
        ...new Set([...decision.require, ...(context.kind === 'step-up' ? [context.require] : [])]),
      ]);
    if (decision.effect !== 'allow')
      return refuse(
        req,
        reply,
        who,
        sp.name,
        decision.reasons.map((r) => r.message),
      );
    if (context.kind === 'step-up') return stepUp([context.require]);
    if (context.kind === 'impossible')
      return sendStatus(
        reply,
        sp,
        pending,
        [SAML_STATUS.responder, SAML_STATUS.noAuthnContext],
        context.message,
      );
    return issue(req, reply, who, session, {
      destination: pending.acsUrl,
      audience: sp.entityId,
      ...(pending.unsolicited ? {} : { inResponseTo: pending.requestId }),
      nameId: nameIdFor(sp, who, `_${randomUUID().replaceAll('-', '')}`),
      attributes: mappedAttributes(sp, who),
      target: formatTarget(target),
      relayState: pending.relayState,
      details: {
        sp: sp.entityId,
        ...(pending.unsolicited ? { initiatedBy: 'idp' } : { inResponseTo: pending.requestId }),
      },
      label: `Signing you in to ${sp.name}.`,
      signResponse: true,
      authnContextClassRef: context.classRef,
      csp: autoPostCsp(pending.acsUrl),
    });
  };

  // ---- IdP-initiated SSO to any registered SP (a portal links here) --------------------------

  app.get<{ Querystring: { sp?: string; RelayState?: string } }>(
    '/saml/launch',
    { schema: { hide: true } },
    async (req, reply) => {
      const ref = typeof req.query.sp === 'string' ? req.query.sp : '';
      const relay = typeof req.query.RelayState === 'string' ? req.query.RelayState : undefined;
      const sp = ref ? await serviceProviders.get(ref).catch(() => null) : null;
      if (!sp || (relay !== undefined && Buffer.byteLength(relay) > AUTHN_REQUEST_LIMITS.maxRelayStateBytes))
        return reply
          .code(sp ? 400 : 404)
          .type('text/html; charset=utf-8')
          .header('content-security-policy', PAGE_CSP)
          .send(
            sp
              ? errorPage(
                  400,
                  'RelayState too long',
                  `RelayState may be at most ${AUTHN_REQUEST_LIMITS.maxRelayStateBytes} bytes.`,
                )
              : errorPage(
                  404,
                  'Unknown application',
                  'No SAML application with that name is registered in Ferry. Check the link with your administrator.',
                ),
          );
      const acs = serviceProviders.resolveAcs(sp);
      const pending: PendingSso = {
        spId: sp.id,
        requestId: `_idp${randomUUID().replaceAll('-', '')}`,
        acsUrl: acs.url,
        ...(relay ? { relayState: relay } : {}),
        expiresAt: clock.now().getTime() + PENDING_TTL_MS,
        unsolicited: true,
      };
      const session = await currentSession(req);
      if (!session) return toSignin(reply, `/saml/sso/resume?state=${sealPending(pending)}`);
      return respondToSp(req, reply, session, sp, pending);
    },
  );

  app.get('/saml/sso', { schema: { hide: true } }, async (req, reply) => {
    const rawQuery = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
    const authn = parseRedirectAuthnRequest(req.query as Record<string, unknown>, rawQuery, {
      now: clock.now(),
      ssoUrls: [ssoUrl],
    });
    return continueSso(req, reply, authn);
  });

  app.post('/saml/sso', { schema: { hide: true } }, async (req, reply) => {
    const authn = parsePostAuthnRequest((req.body ?? {}) as Record<string, unknown>, {
      now: clock.now(),
      ssoUrls: [ssoUrl],
    });
    return continueSso(req, reply, authn);
  });

  app.get<{ Querystring: { state?: string } }>(
    '/saml/sso/resume',
    { schema: { hide: true } },
    async (req, reply) => {
      let pending: PendingSso | null = null;
      try {
        pending = JSON.parse(opts.masterKey.unseal(req.query.state ?? '', PENDING_CONTEXT)) as PendingSso;
      } catch {
        pending = null;
      }
      if (!pending || pending.expiresAt < clock.now().getTime()) {
        return reply
          .code(400)
          .type('text/html; charset=utf-8')
          .header('content-security-policy', PAGE_CSP)
          .send(
            errorPage(
              400,
              'Sign-in request expired',
              'This sign-in request is invalid or has expired. Go back to the application and start again.',
            ),
          );
      }
      const session = await currentSession(req);
      if (!session || !freshEnough(session, pending)) {
        if (pending.isPassive)
          return sendStatus(
            reply,
            await serviceProviders.get(pending.spId),
            pending,
            [SAML_STATUS.responder, SAML_STATUS.noPassive],
            'no one is signed in',
          );
        return toSignin(reply, req.url, pending.authAfter !== undefined);
      }
      const sp = await serviceProviders.get(pending.spId);
      return respondToSp(req, reply, session, sp, pending);
    },
  );
};
