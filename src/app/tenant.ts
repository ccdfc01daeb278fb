import { z } from 'zod';
import {
  checkPermissionSet,
  type PermissionSetInput,
  type PermissionSetSpec,
} from '../access/permission-set-rules.js';
import { type ActivationRules, rulesOf } from '../access/pim/eligibilities.js';
import { targetText } from '../access/pim/targets.js';
import { parsePolicyInput } from '../access/policies/policy.js';
import type { AuditContext } from '../audit/actor.js';
import type { SyncPlan, WantedState } from '../aws/identity-center/permission-set-sync.js';
import { parseDuration } from '../duration.js';
import { InvalidInput, NotFound } from '../errors.js';
import { RELYING_PARTY_GRANTS } from '../federation/oidc/clients.js';
import { normalizePublicUrl, normalizeUpstream } from '../proxy/apps.js';
import type { Services } from './services.js';

/**
 * The declarative tenant file (`ferry apply tenant.yaml`): groups, AWS accounts with their roles, and
 * assignments. Applying it twice changes nothing the second time; `dryRun` reports what would change.
 * Users come from SCIM or the directory API, not from this file.
 */
const seconds = z.union([z.number().int(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({
      code: 'custom',
      message: `expected seconds or a duration such as 12h (got ${JSON.stringify(v)})`,
    });
    return z.NEVER;
  }
  return Math.round(ms / 1000);
});

export const tenantSchema = z
  .object({
    groups: z
      .array(
        z.object({ name: z.string().min(1).max(256), description: z.string().max(1024).optional() }).strict(),
      )
      .default([]),
    accounts: z
      .array(
        z
          .object({
            id: z.string().regex(/^\d{12}$/, 'expected a 12-digit account id'),
            alias: z.string().min(1).max(63),
            partition: z.enum(['aws', 'aws-us-gov', 'aws-cn']).optional(),
            samlProviderName: z.string().min(1).max(128).optional(),
            endpointUrl: z.string().url().nullable().optional(),
            roles: z
              .array(
                z
                  .object({
                    name: z.string().min(1).max(64),
                    path: z.string().optional(),
                    maxSessionDuration: seconds.optional(),
                    description: z.string().max(1000).optional(),
                  })
                  .strict(),
              )
              .default([]),
          })
          .strict(),
      )
      .default([]),
    assignments: z
      .array(
        z
          .object({
            group: z.string().optional(),
            user: z.string().optional(),
            account: z.string().min(1),
            role: z.string().min(1),
          })
          .strict()
          .refine(
            (a) => (a.group === undefined) !== (a.user === undefined),
            'give exactly one of group or user',
          ),
      )
      .default([]),
    sshLogins: z
      .array(
        z
          .object({
            group: z.string().min(1),
            hosts: z.string().min(1).default('*'),
            logins: z.array(z.string().min(1)).min(1),
            portForwarding: z.boolean().optional(),
            agentForwarding: z.boolean().optional(),
            maxDuration: seconds.optional(),
          })
          .strict(),
      )
      .default([]),
    proxyApps: z
      .array(
        z
          .object({
            name: z.string().min(1).max(63),
            upstream: z.string().min(1),
            url: z.string().min(1),
            /** groups that may use it; none = nobody, unless openToAll */
            groups: z.array(z.string().min(1)).default([]),
            /** open to every active user while no group is assigned; omitted: false for a new app, unchanged otherwise */
            openToAll: z.boolean().optional(),
          })
          .strict(),
      )
      .default([]),
    /** PIM: who may activate which role just in time, and under which rules */
    eligibilities: z
      .array(
        z
          .object({
            group: z.string().optional(),
            user: z.string().optional(),
            account: z.string().min(1).optional(),
            role: z.string().min(1).optional(),
            /** instead of account and role (0024): aws:<account>/permission-set/<name>, group:<name>, ssh:<login>@<host> */
            target: z.string().min(1).optional(),
            maxDuration: seconds,
            requireJustification: z.boolean().default(false),
            requireTicket: z.boolean().default(false),
            requireMfa: z.boolean().default(false),
            approvers: z
              .object({
                groups: z.array(z.string().min(1)).default([]),
                users: z.array(z.string().min(1)).default([]),
              })
              .strict()
              .optional(),
            approvalsRequired: z.number().int().min(0).max(50).optional(),
            autoApprove: z
              .object({
                maxDuration: seconds.optional(),
                requesterGroups: z.array(z.string().min(1)).optional(),
                withTicket: z.boolean().optional(),
              })
              .strict()
              .optional(),
          })
          .strict()
          .refine(
            (a) => (a.group === undefined) !== (a.user === undefined),
            'give exactly one of group or user',
          ),
      )
      .default([]),
    /** named locations: name → CIDR ranges */
    namedLocations: z
      .array(z.object({ name: z.string().min(1), ranges: z.array(z.string().min(1)).min(1) }).strict())
      .default([]),
    /**
     * OpenID relying parties' grants, PKCE rule and redirect URIs. A missing client is created only
     * when it is public (authMethod none): a secret is shown once, so such clients start with the CLI.
     */
    oidcClients: z
      .array(
        z
          .object({
            name: z.string().min(1).max(64),
            authMethod: z.literal('none').optional(),
            grantTypes: z.array(z.enum(RELYING_PARTY_GRANTS)).min(1).optional(),
            requirePkce: z.boolean().optional(),
            redirectUris: z.array(z.string().min(1)).optional(),
            postLogoutRedirectUris: z.array(z.string().min(1)).optional(),
          })
          .strict(),
      )
      .default([]),
    /** IAM Identity Center permission sets (docs/identity-center.md), checked against AWS's rules first */
    permissionSets: z
      .array(
        z
          .object({
            name: z.string(),
            description: z.string().optional(),
            sessionDuration: z.union([z.string(), z.number().int()]).optional(),
            relayState: z.string().optional(),
            managedPolicies: z.array(z.string()).optional(),
            customerManagedPolicies: z
              .array(z.object({ name: z.string(), path: z.string().optional() }).strict())
              .optional(),
            inlinePolicy: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
            permissionsBoundary: z
              .union([
                z.object({ managedPolicyArn: z.string() }).strict(),
                z
                  .object({
                    customerManagedPolicy: z
                      .object({ name: z.string(), path: z.string().optional() })
                      .strict(),
                  })
                  .strict(),
              ])
              .optional(),
          })
          .strict(),
      )
      .default([]),
    /** who gets which permission set in which account, or in every account of an OU (ou-…, r-… or /Root/…) */
    permissionSetAssignments: z
      .array(
        z
          .object({
            group: z.string().optional(),
            user: z.string().optional(),
            account: z.string().min(1).optional(),
            ou: z.string().min(1).optional(),
            permissionSet: z.string().min(1),
          })
          .strict()
          .refine(
            (a) => (a.group === undefined) !== (a.user === undefined),
            'give exactly one of group or user',
          )
          .refine(
            (a) => (a.account === undefined) !== (a.ou === undefined),
            'give exactly one of account or ou',
          ),
      )
      .default([]),
    /** conditional access policies, as `PUT /api/v1/policies/{name}` takes them (validated there) */
    policies: z.array(z.object({ name: z.string().min(1) }).passthrough()).default([]),
  })
  .strict();

export type TenantFile = z.input<typeof tenantSchema>;

export interface TenantChange {
  action: 'create' | 'update' | 'delete';
  kind:
    | 'group'
    | 'aws-account'
    | 'aws-role'
    | 'assignment'
    | 'ssh-login'
    | 'proxy-app'
    | 'eligibility'
    | 'named-location'
    | 'policy'
    | 'oidc-client'
    | 'permission-set'
    | 'permission-set-assignment'
    | 'iic-permission-set'
    | 'iic-account-assignment';
  name: string;
  detail?: string;
}

export function parseTenant(document: unknown): z.output<typeof tenantSchema> {
  const parsed = tenantSchema.safeParse(document ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const reason =
      issue.code === 'unrecognized_keys'
        ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`
        : issue.message;
    throw new InvalidInput(
      `tenant file: ${issue.path.join('.') || '(top level)'}: ${reason}`,
      issue.path.join('.'),
    );
  }
  return parsed.data;
}

/** Applies (or with dryRun, only compares) a tenant document; `prune` removes assignments it doesn't list. */
export async function applyTenant(
  services: Services,
  ctx: AuditContext,
  document: unknown,
  options: {
    dryRun: boolean;
    prune: boolean;
    /** what the Identity Center side says: the dry run's plan, or that a sync should follow */
    onIdentityCenter?: (r: { plan: SyncPlan | null; syncNeeded: boolean }) => void;
  },
): Promise<TenantChange[]> {
  const tenant = parseTenant(document);
  const { dryRun } = options;
  const changes: TenantChange[] = [];
  // Every permission set is checked against Identity Center's rules before anything is written or called.
  const wantedSets: PermissionSetSpec[] = tenant.permissionSets.map((p, i) => {
    try {
      return checkPermissionSet(p as PermissionSetInput);
    } catch (err) {
      if (err instanceof InvalidInput)
        throw new InvalidInput(
          `tenant file: permissionSets.${i}: ${err.message}`,
          `permissionSets.${i}.${err.field}`,
        );
      throw err;
    }
  });
  const knownGroups = new Set<string>();

  for (const g of tenant.groups) {
    const existing = await services.groups.get(g.name).catch((err: unknown) => {
      if (err instanceof NotFound) return null;
      throw err;
    });
    knownGroups.add(g.name.toLowerCase());
    if (existing) continue;
    changes.push({ action: 'create', kind: 'group', name: g.name });
    if (!dryRun)
      await services.groups.create(ctx, { displayName: g.name, description: g.description ?? null });
  }

  const plannedAccounts = new Map<string, string>(); // alias/id (lower) → id
  for (const a of tenant.accounts) {
    plannedAccounts.set(a.id, a.id);
    plannedAccounts.set(a.alias.toLowerCase(), a.id);
    const existing = await services.accounts.find(services.store.db, a.id);
    const wanted = {
      partition: a.partition ?? existing?.partition ?? 'aws',
      samlProviderName: a.samlProviderName ?? existing?.samlProviderName ?? 'Ferry',
      endpointUrl: a.endpointUrl === undefined ? (existing?.endpointUrl ?? null) : a.endpointUrl,
    };
    if (!existing) {
      changes.push({ action: 'create', kind: 'aws-account', name: `${a.id} (${a.alias})` });
    } else if (
      existing.alias !== a.alias ||
      existing.partition !== wanted.partition ||
      existing.samlProviderName !== wanted.samlProviderName ||
      existing.endpointUrl !== wanted.endpointUrl
    ) {
      changes.push({
        action: 'update',
        kind: 'aws-account',
        name: a.id,
        detail: diff(existing, { alias: a.alias, ...wanted }),
      });
    }
    if (!dryRun) await services.accounts.upsert(ctx, { id: a.id, alias: a.alias, ...wanted });
    const existingRoles = existing ? await services.accounts.roles(a.id) : [];
    for (const r of a.roles) {
      const current = existingRoles.find((x) => x.name === r.name);
      const target = `aws:${a.id}/${r.name}`;
      if (!current) changes.push({ action: 'create', kind: 'aws-role', name: target });
      else {
        const wantedRole = {
          path: r.path ?? current.path,
          maxSessionDuration: r.maxSessionDuration ?? current.maxSessionDuration,
          description: r.description ?? current.description,
        };
        const d = diff(current, wantedRole);
        if (d) changes.push({ action: 'update', kind: 'aws-role', name: target, detail: d });
      }
      if (!dryRun) await services.accounts.upsertRole(ctx, a.id, r);
    }
  }

  const wantedAssignments = new Set<string>();
  for (const a of tenant.assignments) {
    const type = a.group !== undefined ? 'group' : 'user';
    const ref = (a.group ?? a.user)!;
    const accountId =
      plannedAccounts.get(a.account.toLowerCase()) ??
      (await services.accounts.find(services.store.db, a.account))?.id;
    if (!accountId)
      throw new InvalidInput(`tenant file: assignment names unknown account ${a.account}`, 'assignments');
    const principal = await resolve(services, type, ref, knownGroups, dryRun);
    const target = `aws:${accountId}/${a.role}`;
    const label = `${type}:${ref} → ${target}`;
    wantedAssignments.add(`${type}:${principal?.id ?? ref}:${target}`);
    const exists =
      principal !== null &&
      (await services.assignments.list({ principal: { type, id: principal.id }, accountId })).some(
        (x) => x.roleName === a.role,
      );
    if (exists) continue;
    changes.push({ action: 'create', kind: 'assignment', name: label });
    if (!dryRun) await services.assignments.add(ctx, principal!, accountId, a.role);
  }

  const wantedSshLogins = new Set<string>();
  for (const m of tenant.sshLogins) {
    const group = await resolve(services, 'group', m.group, knownGroups, dryRun);
    const label = `group:${m.group} → ${m.logins.join(',')}@${m.hosts}`;
    if (group) wantedSshLogins.add(`${group.id}:${m.hosts}`);
    const input = {
      hosts: m.hosts,
      logins: m.logins,
      portForwarding: m.portForwarding ?? false,
      agentForwarding: m.agentForwarding ?? false,
      maxDuration: m.maxDuration ?? null,
    };
    const current = group
      ? (await services.sshLogins.list({ groupId: group.id })).find((x) => x.hosts === m.hosts)
      : undefined;
    if (!current) changes.push({ action: 'create', kind: 'ssh-login', name: label });
    else {
      const d = diff(current, { ...input, logins: undefined });
      const loginsChanged = current.logins.join(',') !== [...new Set(m.logins)].join(',');
      if (!d && !loginsChanged) continue;
      changes.push({
        action: 'update',
        kind: 'ssh-login',
        name: label,
        detail: [d, loginsChanged ? `logins: ${current.logins.join(',')} → ${m.logins.join(',')}` : '']
          .filter(Boolean)
          .join(', '),
      });
    }
    if (!dryRun) await services.sshLogins.set(ctx, group!, input);
  }

  const existingApps = new Map((await services.proxyApps.list()).map((a) => [a.name, a]));
  for (const a of tenant.proxyApps) {
    const groups = [];
    for (const g of a.groups) {
      const group = await resolve(services, 'group', g, knownGroups, dryRun);
      if (group) groups.push(group);
    }
    const current = existingApps.get(a.name);
    const wanted = { upstream: normalizeUpstream(a.upstream), url: normalizePublicUrl(a.url) };
    if (!current) changes.push({ action: 'create', kind: 'proxy-app', name: a.name });
    else {
      const lower = (names: string[]) => [...new Set(names.map((g) => g.toLowerCase()))].sort().join(',');
      const groupsChanged = lower(current.groups) !== lower(a.groups);
      const d = diff(current, { ...wanted, openToAll: a.openToAll });
      if (!d && !groupsChanged) continue;
      changes.push({
        action: 'update',
        kind: 'proxy-app',
        name: a.name,
        detail: [d, groupsChanged ? `groups: ${current.groups.join(',')} → ${a.groups.join(',')}` : '']
          .filter(Boolean)
          .join(', '),
      });
    }
    if (!dryRun)
      await services.proxyApps.set(ctx, a.name, {
        ...wanted,
        groups,
        ...(a.openToAll !== undefined ? { openToAll: a.openToAll } : {}),
      });
  }

  // Permission sets before eligibilities: an eligibility for a set declared in this same file is
  // checked against the declaration (Identity Center gets it only when the sync runs).
  const wantedPsAssignments = await applyPermissionSets(
    services,
    ctx,
    tenant,
    wantedSets,
    plannedAccounts,
    knownGroups,
    changes,
    dryRun,
  );

  const wantedEligibilities = new Set<string>();
  for (const e of tenant.eligibilities) {
    const type = e.group !== undefined ? 'group' : 'user';
    const ref = (e.group ?? e.user)!;
    if (e.target === undefined && (e.account === undefined || e.role === undefined))
      throw new InvalidInput(
        'tenant file: an eligibility names a target, or an account and a role',
        'eligibilities',
      );
    let accountId: string | undefined;
    let target: string;
    if (e.target !== undefined) {
      // PIM beyond roles (0024): a group planned in this run is not there yet on a dry run
      const stored = await services.eligibilities.resolveTarget(e.target).catch((err: unknown) => {
        if (dryRun && err instanceof NotFound) return null;
        throw err;
      });
      target = stored ? targetText(stored) : e.target;
    } else {
      accountId =
        plannedAccounts.get(e.account!.toLowerCase()) ??
        (await services.accounts.find(services.store.db, e.account!))?.id;
      if (!accountId)
        throw new InvalidInput(
          `tenant file: eligibility names unknown account ${e.account}`,
          'eligibilities',
        );
      target = `aws:${accountId}/${e.role}`;
    }
    const principal = await resolve(services, type, ref, knownGroups, dryRun);
    const label = `${type}:${ref} → ${target}`;
    if (principal) wantedEligibilities.add(`${type}:${principal.id}:${target}`);
    const approvers = [];
    let unresolved = false;
    for (const [t, names] of [
      ['group', e.approvers?.groups ?? []],
      ['user', e.approvers?.users ?? []],
    ] as const) {
      for (const name of names) {
        const a = await resolve(services, t, name, knownGroups, dryRun);
        if (a) approvers.push(a);
        else unresolved = true;
      }
    }
    const requesterGroups = [];
    for (const name of e.autoApprove?.requesterGroups ?? []) {
      const g = await resolve(services, 'group', name, knownGroups, dryRun);
      if (g) requesterGroups.push({ id: g.id, name: g.name });
      else unresolved = true;
    }
    const auto = e.autoApprove
      ? {
          ...(e.autoApprove.maxDuration !== undefined ? { maxDuration: e.autoApprove.maxDuration } : {}),
          ...(requesterGroups.length ? { requesterGroups } : {}),
          ...(e.autoApprove.withTicket ? { withTicket: true } : {}),
        }
      : null;
    const rules: ActivationRules = {
      maxDuration: e.maxDuration,
      requireJustification: e.requireJustification,
      requireTicket: e.requireTicket,
      requireMfa: e.requireMfa,
      approvers,
      approvalsRequired: e.approvalsRequired ?? (approvers.length > 0 || unresolved ? 1 : 0),
      autoApprove: auto,
    };
    const current = principal
      ? (await services.eligibilities.list({ principal: { type, id: principal.id } })).find(
          (x) => x.target === target,
        )
      : undefined;
    if (!current) changes.push({ action: 'create', kind: 'eligibility', name: label });
    else if (JSON.stringify(rulesOf(current)) !== JSON.stringify(rules))
      changes.push({ action: 'update', kind: 'eligibility', name: label, detail: 'activation rules' });
    else continue;
    if (!dryRun)
      if (e.target !== undefined) await services.eligibilities.setTarget(ctx, principal!, e.target, rules);
      else await services.eligibilities.set(ctx, principal!, accountId!, e.role!, rules);
  }

  const existingLocations = new Map((await services.namedLocations.list()).map((l) => [l.name, l]));
  for (const l of tenant.namedLocations) {
    const current = existingLocations.get(l.name);
    if (current && current.ranges.join(',') === l.ranges.join(',')) continue;
    changes.push({ action: current ? 'update' : 'create', kind: 'named-location', name: l.name });
    if (!dryRun) await services.namedLocations.put(ctx, l.name, l.ranges);
  }

  for (const c of tenant.oidcClients) {
    const current = await services.oidcClients.get(c.name).catch((err: unknown) => {
      if (err instanceof NotFound) return null;
      throw err;
    });
    if (!current) {
      if (c.authMethod !== 'none')
        throw new InvalidInput(
          `tenant file: oidcClients: ${c.name} does not exist; create it with \`ferry oidc clients create\` (its secret is shown only then), or give authMethod: none for a public client`,
          'oidcClients',
        );
      changes.push({ action: 'create', kind: 'oidc-client', name: c.name });
      if (!dryRun) await services.oidcClients.create(ctx, { ...c, kind: 'relying-party' });
      continue;
    }
    const wanted = {
      grantTypes: c.grantTypes ?? current.grantTypes,
      requirePkce: c.requirePkce ?? current.requirePkce,
      redirectUris: c.redirectUris ?? current.redirectUris,
      postLogoutRedirectUris: c.postLogoutRedirectUris ?? current.postLogoutRedirectUris,
    };
    const now = {
      grantTypes: current.grantTypes,
      requirePkce: current.requirePkce,
      redirectUris: current.redirectUris,
      postLogoutRedirectUris: current.postLogoutRedirectUris,
    };
    if (JSON.stringify(wanted) === JSON.stringify(now)) continue;
    const detail = (Object.keys(wanted) as Array<keyof typeof wanted>)
      .filter((k) => JSON.stringify(now[k]) !== JSON.stringify(wanted[k]))
      .map((k) => `${k}: ${JSON.stringify(now[k])} → ${JSON.stringify(wanted[k])}`)
      .join(', ');
    changes.push({ action: 'update', kind: 'oidc-client', name: c.name, detail });
    if (!dryRun) await services.oidcClients.update(ctx, c.name, c);
  }

  const existingPolicies = new Map((await services.policies.list()).map((p) => [p.name.toLowerCase(), p]));
  for (const p of tenant.policies) {
    const current = existingPolicies.get(p.name.toLowerCase());
    if (dryRun) {
      // Validated without writing; a dry run can't tell an unchanged policy from a changed one cheaply.
      parsePolicyInput(p, `tenant file: policies: ${p.name}`);
      changes.push({
        action: current ? 'update' : 'create',
        kind: 'policy',
        name: p.name,
        detail: current ? 'if different' : undefined,
      });
      continue;
    }
    const { changed } = await services.policies.put(ctx, p).catch((err: unknown) => {
      if (err instanceof InvalidInput) throw new InvalidInput(`tenant file: ${err.message}`, 'policies');
      throw err;
    });
    if (changed) changes.push({ action: current ? 'update' : 'create', kind: 'policy', name: p.name });
  }

  if (options.prune) {
    for (const existing of await services.permissionSets.assignments()) {
      if (wantedPsAssignments.keys.has(psKey(existing))) continue;
      changes.push({
        action: 'delete',
        kind: 'permission-set-assignment',
        name: `${existing.principalType}:${existing.principalId} → ${existing.permissionSet} in ${existing.scopeId}`,
      });
      if (!dryRun) await services.permissionSets.unassign(ctx, existing.id);
    }
    for (const existing of await services.permissionSets.list()) {
      if (wantedSets.some((p) => p.name === existing.name)) continue;
      changes.push({ action: 'delete', kind: 'permission-set', name: existing.name });
      if (!dryRun) await services.permissionSets.remove(ctx, existing.name);
    }
    for (const existing of existingApps.values()) {
      if (tenant.proxyApps.some((a) => a.name === existing.name)) continue;
      changes.push({ action: 'delete', kind: 'proxy-app', name: existing.name });
      if (!dryRun) await services.proxyApps.remove(ctx, existing.name);
    }
    for (const existing of await services.eligibilities.list()) {
      if (wantedEligibilities.has(`${existing.principalType}:${existing.principalId}:${existing.target}`))
        continue;
      changes.push({
        action: 'delete',
        kind: 'eligibility',
        name: `${existing.principalType}:${existing.principalId} → ${existing.target}`,
      });
      if (!dryRun) await services.eligibilities.remove(ctx, existing.id);
    }
    for (const existing of await services.sshLogins.list()) {
      if (wantedSshLogins.has(`${existing.groupId}:${existing.hosts}`)) continue;
      changes.push({
        action: 'delete',
        kind: 'ssh-login',
        name: `group:${existing.groupName ?? existing.groupId} → ${existing.logins.join(',')}@${existing.hosts}`,
      });
      if (!dryRun) await services.sshLogins.remove(ctx, existing.id);
    }
    for (const existing of await services.assignments.list()) {
      const key = `${existing.principalType}:${existing.principalId}:${existing.target}`;
      if (wantedAssignments.has(key)) continue;
      changes.push({
        action: 'delete',
        kind: 'assignment',
        name: `${existing.principalType}:${existing.principalId} → ${existing.target}`,
      });
      if (!dryRun) await services.assignments.remove(ctx, existing.id);
    }
  }
  await planIdentityCenter(services, tenant, wantedSets, wantedPsAssignments.rows, changes, options);
  return changes;
}

type PsRow = WantedState['assignments'][number];
const psKey = (a: PsRow) => `${a.principalType}:${a.principalId}:${a.scopeId}:${a.permissionSet}`;

/** Permission sets and their assignments: the declared state in Ferry (Identity Center follows by sync). */
async function applyPermissionSets(
  services: Services,
  ctx: AuditContext,
  tenant: ReturnType<typeof parseTenant>,
  wantedSets: PermissionSetSpec[],
  plannedAccounts: Map<string, string>,
  knownGroups: Set<string>,
  changes: TenantChange[],
  dryRun: boolean,
): Promise<{ keys: Set<string>; rows: PsRow[] }> {
  const existingSets = new Map((await services.permissionSets.list()).map((p) => [p.name, p]));
  for (const spec of wantedSets) {
    const current = existingSets.get(spec.name);
    if (current && JSON.stringify(current) === JSON.stringify(spec)) continue;
    const detail = current
      ? (Object.keys(spec) as Array<keyof PermissionSetSpec>)
          .filter((k) => JSON.stringify(current[k]) !== JSON.stringify(spec[k]))
          .join(', ')
      : undefined;
    changes.push({
      action: current ? 'update' : 'create',
      kind: 'permission-set',
      name: spec.name,
      ...(detail ? { detail } : {}),
    });
    if (!dryRun) await services.permissionSets.put(ctx, spec);
  }
  const keys = new Set<string>();
  const rows: PsRow[] = [];
  const existing = await services.permissionSets.assignments();
  for (const a of tenant.permissionSetAssignments) {
    if (!wantedSets.some((p) => p.name === a.permissionSet) && !existingSets.has(a.permissionSet))
      throw new InvalidInput(
        `tenant file: permissionSetAssignments: unknown permission set ${a.permissionSet}`,
        'permissionSetAssignments',
      );
    const type = a.group !== undefined ? 'group' : 'user';
    const ref = (a.group ?? a.user)!;
    const principal = await resolve(services, type, ref, knownGroups, dryRun);
    let scope: { type: 'account' | 'ou'; id: string; label: string };
    if (a.account !== undefined) {
      const id =
        plannedAccounts.get(a.account.toLowerCase()) ??
        (await services.accounts.find(services.store.db, a.account))?.id;
      if (!id)
        throw new InvalidInput(
          `tenant file: permissionSetAssignments names unknown account ${a.account}`,
          'permissionSetAssignments',
        );
      scope = { type: 'account', id, label: id };
    } else {
      scope = await services.permissionSets.resolveScope(a.ou!).catch((err: unknown) => {
        if (err instanceof InvalidInput)
          throw new InvalidInput(
            `tenant file: permissionSetAssignments: ${err.message}`,
            'permissionSetAssignments',
          );
        throw err;
      });
    }
    const label = `${type}:${ref} → ${a.permissionSet} in ${scope.label}`;
    if (!principal) {
      changes.push({ action: 'create', kind: 'permission-set-assignment', name: label });
      continue;
    }
    const row: PsRow = {
      principalType: type,
      principalId: principal.id,
      scopeType: scope.type,
      scopeId: scope.id,
      permissionSet: a.permissionSet,
    };
    keys.add(psKey(row));
    rows.push(row);
    if (existing.some((x) => psKey(x) === psKey(row))) continue;
    changes.push({ action: 'create', kind: 'permission-set-assignment', name: label });
    if (!dryRun) await services.permissionSets.assign(ctx, principal, scope.id, a.permissionSet);
  }
  return { keys, rows };
}

/**
 * The Identity Center side: a dry run compares what the file declares with Identity Center itself (so it
 * shows console-made drift too); an apply says whether a sync should follow (the CLI streams it with progress).
 */
async function planIdentityCenter(
  services: Services,
  tenant: ReturnType<typeof parseTenant>,
  wantedSets: PermissionSetSpec[],
  wantedRows: PsRow[],
  changes: TenantChange[],
  options: Parameters<typeof applyTenant>[3],
): Promise<void> {
  const inUse =
    wantedSets.length > 0 ||
    tenant.permissionSetAssignments.length > 0 ||
    (await services.permissionSetSync.inUse());
  if (!inUse) {
    options.onIdentityCenter?.({ plan: null, syncNeeded: false });
    return;
  }
  if (!options.dryRun) {
    options.onIdentityCenter?.({ plan: null, syncNeeded: true });
    return;
  }
  const stored = await services.permissionSets.list();
  const storedRows = await services.permissionSets.assignments();
  const sets = options.prune
    ? wantedSets
    : [...wantedSets, ...stored.filter((p) => !wantedSets.some((w) => w.name === p.name))];
  const rows = options.prune
    ? wantedRows
    : [...wantedRows, ...storedRows.filter((r) => !wantedRows.some((w) => psKey(w) === psKey(r)))];
  const plan = await services.permissionSetSync.plan({ sets, assignments: rows });
  for (const step of plan.steps)
    changes.push({
      action: step.action,
      kind: step.kind === 'permission-set' ? 'iic-permission-set' : 'iic-account-assignment',
      name: step.name,
      ...(step.details.length || step.drift
        ? { detail: [...(step.drift ? ['drift'] : []), ...step.details].join(', ') }
        : {}),
    });
  options.onIdentityCenter?.({ plan, syncNeeded: false });
}

async function resolve(
  services: Services,
  type: 'group' | 'user',
  ref: string,
  plannedGroups: Set<string>,
  dryRun: boolean,
): Promise<{ type: 'group' | 'user'; id: string; name: string } | null> {
  try {
    if (type === 'group') {
      const g = await services.groups.get(ref);
      return { type, id: g.id, name: g.displayName };
    }
    const u = await services.users.get(ref);
    return { type, id: u.id, name: u.userName };
  } catch (err) {
    // In a dry run a group the file itself creates doesn't exist yet.
    if (err instanceof NotFound && dryRun && type === 'group' && plannedGroups.has(ref.toLowerCase()))
      return null;
    if (err instanceof NotFound)
      throw new InvalidInput(`tenant file: assignment names unknown ${type} ${ref}`, 'assignments');
    throw err;
  }
}

function diff(current: object, wanted: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(wanted)) {
    const c = (current as Record<string, unknown>)[k];
    if (v !== undefined && c !== v) parts.push(`${k}: ${JSON.stringify(c)} → ${JSON.stringify(v)}`);
  }
  return parts.join(', ');
}

export function formatChanges(changes: TenantChange[]): string {
  if (changes.length === 0) return 'no changes\n';
  const sign = { create: '+', update: '~', delete: '-' } as const;
  return `${changes.map((c) => `${sign[c.action]} ${c.kind} ${c.name}${c.detail ? `  (${c.detail})` : ''}`).join('\n')}\n`;
}
