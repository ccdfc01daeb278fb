import type {} from '@fastify/swagger'; // OpenAPI keys (tags, summary, security) on route schemas
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, preHandlerAsyncHookHandler } from 'fastify';
import { problemResponses } from '../problem-schema.js';
import type { Reach } from './reach.js';

export interface ReachApiOptions {
  reach: Reach;
  authenticate: preHandlerAsyncHookHandler;
  /** a user's id from their userName or id; throws NotFound */
  userId: (ref: string) => Promise<string>;
}

export const ReachItemSchema = Type.Object({
  target: Type.String(),
  userId: Type.String(),
  userName: Type.String(),
  effect: Type.Union([Type.Literal('allow'), Type.Literal('step-up'), Type.Literal('eligible')], {
    description:
      "decide()'s answer for a password sign-in; step-up: reachable after `require`; eligible: by a PIM activation",
  }),
  require: Type.Optional(Type.Array(Type.String())),
  maxDuration: Type.Optional(Type.Integer({ description: 'seconds' })),
  via: Type.Array(
    Type.Object({
      kind: Type.Union([
        Type.Literal('group'),
        Type.Literal('direct'),
        Type.Literal('activation'),
        Type.Literal('eligibility'),
      ]),
      name: Type.String(),
    }),
  ),
  reasons: Type.Array(
    Type.Object({ source: Type.String(), ref: Type.Optional(Type.String()), message: Type.String() }),
  ),
});
const Items = Type.Object({ items: Type.Array(ReachItemSchema) });

/** Who can reach what, answered by decide(): GET /access/of?user=, GET /access/who?target=. */
export const reachApi: FastifyPluginAsync<ReachApiOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.authenticate);
  const security = [{ bearer: [] }];
  const tags = ['access'];

  app.get<{ Querystring: { user: string } }>(
    '/access/of',
    {
      schema: {
        tags,
        summary: 'Every target a person can reach, and why (group, assignment, activation, policy)',
        security,
        querystring: Type.Object(
          { user: Type.String({ minLength: 1, maxLength: 256 }) },
          { additionalProperties: false },
        ),
        response: { 200: Items, ...problemResponses },
      },
    },
    async (req) => ({ items: await opts.reach.of(await opts.userId(req.query.user)) }),
  );

  app.get<{ Querystring: { target: string } }>(
    '/access/who',
    {
      schema: {
        tags,
        summary: 'Every person who can reach a target (aws:…, admin:…, ssh:…, app:…), and why',
        security,
        querystring: Type.Object(
          { target: Type.String({ minLength: 1, maxLength: 600 }) },
          { additionalProperties: false },
        ),
        response: { 200: Items, ...problemResponses },
      },
    },
    async (req) => ({ items: await opts.reach.who(req.query.target) }),
  );
};
