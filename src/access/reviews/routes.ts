import type {} from '@fastify/swagger';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditContext } from '../../audit/actor.js';
import { InvalidInput } from '../../errors.js';
import type { Caller } from '../../identity/caller.js';
import { Nullable } from '../../nullable-schema.js';
import { Forbidden } from '../../problem.js';
import { problemResponses } from '../../problem-schema.js';
import { PimForbidden } from '../pim/activations.js';
import type { Approver } from '../pim/eligibilities.js';
import type { ReviewCampaigns } from './campaigns.js';

type PreHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface ReviewsApiOptions {
  reviews: ReviewCampaigns;
  authenticateCaller: PreHandler;
  authenticateAdmin: PreHandler;
  auditContext: (req: FastifyRequest) => AuditContext;
  /**
   * Deciding an item needs `approvals:decide` (admin-access.ts) unless the person is `named` as a
   * reviewer of the campaign; throws a 403 problem (audited) otherwise (docs/decisions/0041).
   */
  authorizeReviewer?: (req: FastifyRequest, named: boolean) => Promise<void>;
  resolvePrincipal: (
    type: 'group' | 'user',
    ref: string,
  ) => Promise<{ type: 'group' | 'user'; id: string; name: string }>;
  now: () => Date;
  /**
   * Checks that the caller holds an admin permission (throws the admin guard's 401/403 problem): a
   * person with reviews:read sees every campaign and its items, not only those they review (the console).
   */
  requirePermission?: (req: FastifyRequest, reply: FastifyReply, permission: 'reviews:read') => Promise<void>;
}

const CampaignSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  reviewers: Type.Array(Type.Object({ type: Type.String(), id: Type.String(), name: Type.String() })),
  deadline: Type.String(),
  removeUnreviewed: Type.Boolean(),
  state: Type.String(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  closedAt: Nullable(Type.String()),
  closedBy: Nullable(Type.String()),
  progress: Type.Object({
    total: Type.Integer(),
    approved: Type.Integer(),
    denied: Type.Integer(),
    unreviewed: Type.Integer(),
    removed: Type.Integer(),
  }),
});
const ItemSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  label: Type.String(),
  groupId: Nullable(Type.String()),
  userId: Nullable(Type.String()),
  eligibilityId: Nullable(Type.String()),
  decision: Nullable(Type.String()),
  decidedBy: Nullable(Type.String()),
  decidedAt: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  outcome: Nullable(Type.String()),
});
const CampaignBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    groups: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 200 })),
    eligibilities: Type.Optional(Type.Boolean()),
    reviewerGroups: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 50 })),
    reviewerUsers: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 50 })),
    deadline: Type.String({
      maxLength: 64,
      description: 'ISO-8601 time, or a duration from now such as 14d',
    }),
    removeUnreviewed: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const DecisionBody = Type.Object(
  {
    decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
    reason: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const ItemParams = Type.Object({ id: Type.String({ maxLength: 64 }), item: Type.String({ maxLength: 64 }) });

const isAdminToken = (req: FastifyRequest) => /^Bearer\s+ferry_at_/i.test(req.headers.authorization ?? '');

/** Access review campaigns under /api/v1/reviews: admins run them, reviewers (people) decide. */
export const reviewsApi: FastifyPluginAsync<ReviewsApiOptions> = async (app, opts) => {
  const { reviews } = opts;
  const tags = ['reviews'];
  const security = [{ bearer: [] }];
  const callerOrAdmin: PreHandler = (req, reply) =>
    isAdminToken(req) ? opts.authenticateAdmin(req, reply) : opts.authenticateCaller(req, reply);
  /** A person holding reviews:read (an admin role) reads every campaign; anyone else only theirs. */
  const holdsReviewsRead = async (req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    // Admin roles are held by people signed in in a browser; a `ferry login` token carries none.
    if (!opts.requirePermission || req.headers.authorization !== undefined) return false;
    try {
      await opts.requirePermission(req, reply, 'reviews:read');
      return true;
    } catch {
      return false;
    }
  };
  const mayRead = async (req: FastifyRequest, reply: FastifyReply, id: string) => {
    const campaign = await reviews.get(id);
    if (
      req.caller &&
      !reviews.isReviewer(campaign, (req.caller as Caller).principal) &&
      !(await holdsReviewsRead(req, reply))
    )
      throw new Forbidden(`you are not a reviewer of ${campaign.name}`);
    return campaign;
  };
  const AllQuery = Type.Object(
    {
      all: Type.Optional(
        Type.Boolean({
          description:
            'every campaign, not only those you review (a person holding reviews:read; an admin token always sees all)',
        }),
      ),
    },
    { additionalProperties: false },
  );

  app.post<{ Body: Static<typeof CampaignBody> }>(
    '/reviews',
    {
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'Start an access review campaign',
        security,
        body: CampaignBody,
        response: { 201: CampaignSchema, ...problemResponses },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const deadline = deadlineOf(b.deadline, opts.now());
      const groups = [];
      for (const g of b.groups ?? []) {
        const r = await opts.resolvePrincipal('group', g);
        groups.push({ id: r.id, name: r.name });
      }
      const reviewers: Approver[] = [];
      for (const g of b.reviewerGroups ?? [])
        reviewers.push((await opts.resolvePrincipal('group', g)) as Approver);
      for (const u of b.reviewerUsers ?? [])
        reviewers.push((await opts.resolvePrincipal('user', u)) as Approver);
      const campaign = await reviews.create(opts.auditContext(req), {
        name: b.name,
        scope: { groups, eligibilities: b.eligibilities ?? false },
        reviewers,
        deadline,
        removeUnreviewed: b.removeUnreviewed ?? false,
      });
      return reply.code(201).send(campaign);
    },
  );

  app.get<{ Querystring: Static<typeof AllQuery> }>(
    '/reviews',
    {
      onRequest: callerOrAdmin,
      schema: {
        tags,
        summary:
          'Review campaigns (those you review; all with all=true and reviews:read, or with an admin token)',
        security,
        querystring: AllQuery,
        response: { 200: Type.Object({ items: Type.Array(CampaignSchema) }), ...problemResponses },
      },
    },
    async (req, reply) => {
      const all = await reviews.list();
      const caller = req.caller as Caller | null;
      if (!caller) return { items: all };
      if (req.query.all) {
        // Asked for everything: the admin guard's own 403 (which role would give it) when not held.
        if (!opts.requirePermission || req.headers.authorization !== undefined)
          throw new Forbidden(
            'all=true needs an admin API token with reviews:read, or a person signed in in a browser holding it',
          );
        await opts.requirePermission(req, reply, 'reviews:read');
        return { items: all };
      }
      return { items: all.filter((c) => reviews.isReviewer(c, caller.principal)) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/reviews/:id',
    {
      onRequest: callerOrAdmin,
      schema: {
        tags,
        summary: 'One campaign with its progress',
        security,
        params: IdParams,
        response: { 200: CampaignSchema, ...problemResponses },
      },
    },
    async (req, reply) => mayRead(req, reply, req.params.id),
  );

  app.get<{ Params: { id: string } }>(
    '/reviews/:id/items',
    {
      onRequest: callerOrAdmin,
      schema: {
        tags,
        summary: "A campaign's items and their decisions",
        security,
        params: IdParams,
        response: { 200: Type.Object({ items: Type.Array(ItemSchema) }), ...problemResponses },
      },
    },
    async (req, reply) => {
      await mayRead(req, reply, req.params.id);
      return { items: await reviews.items(req.params.id) };
    },
  );

  app.post<{ Params: { id: string; item: string }; Body: Static<typeof DecisionBody> }>(
    '/reviews/:id/items/:item/decision',
    {
      onRequest: opts.authenticateCaller,
      config: { permission: 'approvals:decide' },
      preHandler: async (req) => {
        const campaign = await reviews.get((req.params as { id: string }).id);
        await opts.authorizeReviewer?.(req, reviews.isReviewer(campaign, (req.caller as Caller).principal));
      },
      schema: {
        tags,
        summary: 'Approve or deny one item (a reviewer, never on their own access)',
        security,
        params: ItemParams,
        body: DecisionBody,
        response: { 200: ItemSchema, ...problemResponses },
      },
    },
    async (req) => {
      try {
        const p = (req.caller as Caller).principal;
        return await reviews.decide(
          opts.auditContext(req),
          p,
          req.params.id,
          req.params.item,
          req.body.decision,
          req.body.reason?.trim() || null,
        );
      } catch (err) {
        if (err instanceof PimForbidden) throw new Forbidden(err.message);
        throw err;
      }
    },
  );

  app.post<{ Params: { id: string } }>(
    '/reviews/:id/close',
    {
      onRequest: opts.authenticateAdmin,
      schema: {
        tags,
        summary: 'Close a campaign now and apply its results',
        security,
        params: IdParams,
        response: { 200: CampaignSchema, ...problemResponses },
      },
    },
    async (req) => reviews.close(opts.auditContext(req), req.params.id),
  );
};

function deadlineOf(text: string, now: Date): Date {
  const rel = /^(\d{1,4})(m|h|d)$/.exec(text.trim());
  if (rel)
    return new Date(
      now.getTime() + Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'],
    );
  const at = new Date(text);
  if (Number.isNaN(at.getTime()) || !/^\d{4}-\d\d-\d\d/.test(text))
    throw new InvalidInput(
      `deadline: expected an ISO-8601 time or a duration such as 14d (got ${JSON.stringify(text)})`,
      'deadline',
    );
  return at;
}
