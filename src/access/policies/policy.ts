import { z } from 'zod';
import { InvalidInput } from '../../errors.js';

/** How risky identity protection thinks a sign-in or a user is. */
export type RiskLevel = 'none' | 'low' | 'medium' | 'high';
export const RISK_LEVELS = ['none', 'low', 'medium', 'high'] as const;

export type PolicyState = 'on' | 'report-only' | 'off';
export type GrantControl = 'mfa' | 'phishing-resistant-mfa' | 'compliant-device';
export type ClientType = 'browser' | 'cli' | 'workload';
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** A user, group or workload a policy names: matched by id, shown by name. */
export interface Ref {
  id: string;
  name: string;
}

export interface PolicyAssignments {
  /** every user and workload */
  all: boolean;
  users: Ref[];
  groups: Ref[];
  workloads: Ref[];
}

export interface PolicyConditions {
  signInRisk?: RiskLevel[];
  userRisk?: RiskLevel[];
  /** named locations or CIDR ranges; `any` matches every address */
  locations?: { include: string[]; exclude: string[] };
  /** ISO 3166 alpha-2 codes, from the offline GeoIP database */
  countries?: { include: string[]; exclude: string[] };
  clients?: ClientType[];
  /** applies only to requests from a compliant (or a not compliant) device */
  device?: 'compliant' | 'not-compliant';
  /** applies inside (or outside) this weekly window */
  time?: {
    days: Array<(typeof WEEKDAYS)[number]>;
    from: string;
    to: string;
    timezone: string;
    outside: boolean;
  };
}

export interface PolicyDefinition {
  include: PolicyAssignments;
  exclude: Omit<PolicyAssignments, 'all'>;
  /** target patterns: `all`, aws:<account|*>/<role glob>, aws:<account>/permission-set/<glob>, ssh:<host glob>, app:<glob> */
  targets: string[];
  excludeTargets: string[];
  conditions: PolicyConditions;
  grant: { block: boolean; require: GrantControl[]; operator: 'AND' | 'OR' };
  session: { maxCredentialLifetime?: number; signInFrequency?: number };
}

export interface Policy {
  id: string;
  name: string;
  state: PolicyState;
  definition: PolicyDefinition;
  createdAt: string;
  updatedAt: string;
  version: number;
}

const names = z.array(z.string().min(1).max(256)).max(1000).default([]);
const durationSeconds = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(v.trim());
  if (!m || Number(m[1]) === 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected seconds or a duration such as 8h (got ${JSON.stringify(v)})`,
    });
    return z.NEVER;
  }
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
});
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24-hour)');
const risk = z.array(z.enum(RISK_LEVELS)).min(1);
const includeExclude = z
  .object({
    include: z.array(z.string().min(1).max(64)).default([]),
    exclude: z.array(z.string().min(1).max(64)).default([]),
  })
  .strict();

export const TARGET_PATTERN =
  /^(all|aws:(\d{12}|\*)\/(permission-set\/)?[\w+=,.@*-]{1,128}|aws:ou\/\S{1,512}\/[\w+=,.@*-]{1,128}|ssh:[\w.:*@-]{1,253}|app:[\w.:/*-]{1,256}|admin:[a-z*-]{1,64})$/;

/** A policy as the API and the tenant file write it: users, groups and workloads by name. */
export const policyInputSchema = z
  .object({
    name: z.string().min(1).max(200),
    state: z.enum(['on', 'report-only', 'off']).default('report-only'),
    include: z
      .object({ all: z.boolean().default(false), users: names, groups: names, workloads: names })
      .strict()
      .prefault({}),
    exclude: z.object({ users: names, groups: names, workloads: names }).strict().prefault({}),
    targets: z
      .array(
        z
          .string()
          .regex(
            TARGET_PATTERN,
            'expected all, aws:<account|*>/<role>, aws:<account>/permission-set/<name>, aws:ou/<ou id or path>/<role or permission-set/name>, ssh:<host>, app:<name>, admin:<role> (* is a wildcard)',
          ),
      )
      .min(1),
    excludeTargets: z.array(z.string().regex(TARGET_PATTERN, 'expected a target pattern')).default([]),
    conditions: z
      .object({
        signInRisk: risk.optional(),
        userRisk: risk.optional(),
        locations: includeExclude.optional(),
        countries: z
          .object({
            include: z
              .array(z.string().regex(/^[A-Za-z]{2}$/, 'expected an ISO 3166 alpha-2 code'))
              .default([]),
            exclude: z
              .array(z.string().regex(/^[A-Za-z]{2}$/, 'expected an ISO 3166 alpha-2 code'))
              .default([]),
          })
          .strict()
          .optional(),
        clients: z
          .array(z.enum(['browser', 'cli', 'workload']))
          .min(1)
          .optional(),
        device: z.enum(['compliant', 'not-compliant']).optional(),
        time: z
          .object({
            days: z
              .array(z.enum(WEEKDAYS))
              .min(1)
              .default([...WEEKDAYS]),
            from: hhmm,
            to: hhmm,
            timezone: z.string().default('UTC'),
            outside: z.boolean().default(false),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    grant: z
      .object({
        block: z.boolean().default(false),
        require: z.array(z.enum(['mfa', 'phishing-resistant-mfa', 'compliant-device'])).default([]),
        operator: z.enum(['AND', 'OR']).default('AND'),
      })
      .strict()
      .prefault({}),
    session: z
      .object({
        maxCredentialLifetime: durationSeconds.optional(),
        signInFrequency: durationSeconds.optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.grant.block && p.grant.require.length > 0)
      ctx.addIssue({ code: 'custom', path: ['grant'], message: 'block and require exclude each other' });
    if (!p.include.all && p.include.users.length + p.include.groups.length + p.include.workloads.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['include'],
        message: 'include someone: all, users, groups or workloads',
      });
    const tz = p.conditions.time?.timezone;
    if (tz) {
      try {
        new Intl.DateTimeFormat('en-GB', { timeZone: tz });
      } catch {
        ctx.addIssue({
          code: 'custom',
          path: ['conditions', 'time', 'timezone'],
          message: `unknown time zone ${tz}`,
        });
      }
    }
  });

export type PolicyInput = z.input<typeof policyInputSchema>;
export type ParsedPolicyInput = z.output<typeof policyInputSchema>;

export function parsePolicyInput(document: unknown, where = 'policy'): ParsedPolicyInput {
  const parsed = policyInputSchema.safeParse(document ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.join('.');
    const reason =
      issue.code === 'unrecognized_keys'
        ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`
        : issue.message;
    throw new InvalidInput(`${where}: ${path || '(top level)'}: ${reason}`, path || undefined);
  }
  return parsed.data;
}
