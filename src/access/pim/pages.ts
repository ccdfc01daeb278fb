import fastifyFormbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import type { CallerAuthenticator } from '../../identity/caller.js';
import { csrfToken, csrfValid } from '../../identity/pages/csrf.js';
import { errorPage, type Html, html, PAGE_CSP, page } from '../../identity/pages/html.js';
import { type Activation, type Activations, isApprover } from './activations.js';
import { toProblemLike } from './problem-like.js';

export interface PimPagesOptions {
  activations: Activations;
  authenticate: CallerAuthenticator;
  auditContext: (req: FastifyRequest) => AuditContext;
  secureCookies: boolean;
  /** audits an answer refused with 403 (not an approver, approving one's own request); never throws */
  onRefused?: (req: FastifyRequest, detail: string) => Promise<void>;
}

type Action = 'approve' | 'deny' | 'revoke' | 'cancel';
const ACTIONS: Action[] = ['approve', 'deny', 'revoke', 'cancel'];
const LABEL: Record<Action, string> = {
  approve: 'Approve',
  deny: 'Deny',
  revoke: 'Revoke now',
  cancel: 'Cancel request',
};

/**
 * The page the approve/deny links of a notification open: the request, and the answers this person
 * may give. Plain HTML forms (CSRF double-submit), for people signed in to Ferry in their browser.
 */
export const pimPages: FastifyPluginAsync<PimPagesOptions> = async (app, opts) => {
  await app.register(fastifyFormbody, { bodyLimit: 16 * 1024 });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
      reply.header('content-security-policy', PAGE_CSP);
      reply.header('x-frame-options', 'DENY');
      reply.header('cache-control', 'no-store');
    }
    return payload;
  });
  const send = (reply: FastifyReply, status: number, title: string, body: Html) =>
    reply.code(status).type('text/html; charset=utf-8').send(page(title, body));
  const fail = (reply: FastifyReply, status: number, title: string, detail: string) =>
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(errorPage(status, title, detail));

  app.get<{ Params: { id: string }; Querystring: { action?: string; done?: string } }>(
    '/pim/activations/:id',
    async (req, reply) => {
      const caller = await opts.authenticate(req);
      if (!caller) return reply.redirect(`/signin?return_to=${encodeURIComponent(req.url)}`, 303);
      const a = await opts.activations.get(req.params.id).catch(() => null);
      const me = caller.principal;
      if (!a || (a.userId !== me.id && !isApprover(a.approvers, me)))
        return fail(reply, 404, 'Not found', 'There is no such activation, or it is not yours to see.');
      const offered = ACTIONS.filter((x) => allowed(a, x, me));
      const focus = ACTIONS.includes(req.query.action as Action) ? (req.query.action as Action) : null;
      const token = csrfToken(req, reply, opts.secureCookies);
      return send(
        reply,
        200,
        `Activation of ${a.target}`,
        html`<h1>${a.userName} ${a.state === 'requested' ? 'requests' : 'activation of'} ${a.target}</h1>
${req.query.done ? html`<p class="notice" role="status">Done: the activation is now ${a.state}.</p>` : ''}
<dl>
<dt>State</dt><dd>${a.state}</dd>
<dt>Duration</dt><dd>${Math.round(a.durationSeconds / 60)} minutes</dd>
<dt>Justification</dt><dd>${a.justification ?? '—'}</dd>
<dt>Ticket</dt><dd>${a.ticket ?? '—'}</dd>
<dt>Approvals</dt><dd>${a.approvals.length} of ${a.approvalsRequired}${a.approvals.length ? html` (${a.approvals.map((x) => x.userName).join(', ')})` : ''}</dd>
<dt>${a.expiresAt ? 'Ends' : 'Answer by'}</dt><dd>${a.expiresAt ?? a.answerBy}</dd>
</dl>
${offered.length === 0 ? html`<p class="muted">Nothing for you to do here.</p>` : ''}
${offered.map(
  (x) => html`<form method="post" action="/pim/activations/${encodeURIComponent(a.id)}/${x}">
<input type="hidden" name="csrf" value="${token}">
<label for="reason-${x}">Reason${focus === x ? ' (you followed the link to this)' : ''}</label>
<input type="text" id="reason-${x}" name="reason" maxlength="1000" autocomplete="off">
<button type="submit">${LABEL[x]}</button>
</form>`,
)}`,
      );
    },
  );

  app.post<{ Params: { id: string; action: string }; Body: Record<string, string | undefined> }>(
    '/pim/activations/:id/:action',
    async (req, reply) => {
      const action = req.params.action as Action;
      if (!ACTIONS.includes(action)) return fail(reply, 404, 'Not found', 'No such action.');
      const body = (req.body ?? {}) as Record<string, string | undefined>;
      if (!csrfValid(req, body.csrf))
        return fail(reply, 400, 'Form expired', 'Reload the page and try again.');
      const caller = await opts.authenticate(req);
      if (!caller)
        return reply.redirect(
          `/signin?return_to=${encodeURIComponent(`/pim/activations/${req.params.id}`)}`,
          303,
        );
      req.actor = { type: 'user', id: caller.principal.id, name: caller.principal.userName };
      const reason = body.reason?.trim().slice(0, 1000) || null;
      const ctx = opts.auditContext(req);
      const { activations } = opts;
      try {
        const id = req.params.id;
        const me = caller.principal;
        if (action === 'approve') await activations.approve(ctx, me, id, reason);
        else if (action === 'deny') await activations.deny(ctx, me, id, reason);
        else if (action === 'cancel') await activations.cancel(ctx, me, id, reason);
        else await activations.revoke(ctx, me, id, reason);
      } catch (err) {
        const p = toProblemLike(err);
        if (!p) throw err;
        if (p.status === 403) await opts.onRefused?.(req, `${action}: ${p.detail}`);
        return fail(reply, p.status, p.title, p.detail);
      }
      return reply.redirect(`/pim/activations/${encodeURIComponent(req.params.id)}?done=${action}`, 303);
    },
  );
};

function allowed(
  a: Activation,
  action: Action,
  me: { id: string; groups: Array<{ id: string; name: string }> },
): boolean {
  const mine = a.userId === me.id;
  switch (action) {
    case 'approve':
      return (
        a.state === 'requested' &&
        !mine &&
        isApprover(a.approvers, me) &&
        !a.approvals.some((x) => x.userId === me.id)
      );
    case 'deny':
      return a.state === 'requested' && !mine && isApprover(a.approvers, me);
    case 'cancel':
      return mine && (a.state === 'requested' || a.state === 'approved');
    case 'revoke':
      return a.state === 'active' && (mine || isApprover(a.approvers, me));
  }
}
