import type { PermissionSetSpec, PermissionsBoundary } from '../../access/permission-set-rules.js';
import type { PermissionSetAssignment, PermissionSets } from '../../access/permission-sets.js';
import type { AuditContext } from '../../audit/actor.js';
import { canonicalJson } from '../../audit/canonical-json.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import type { Store } from '../../store/open.js';
import { ssoAdminSdk } from '../sdk.js';
import type { IdentityCenterClients } from './sso-admin.js';

/** One thing to change in Identity Center, as the dry run shows it and the apply reports it. */
export interface SyncStep {
  action: 'create' | 'update' | 'delete';
  kind: 'permission-set' | 'account-assignment';
  /** the permission set; for assignments `<set> → <account> ← group:<name>` */
  name: string;
  details: string[];
  /** true when it undoes a change made outside Ferry (the AWS console) */
  drift: boolean;
}

export interface SyncPlan {
  instanceArn: string;
  startUrl: string;
  steps: SyncStep[];
  /** what cannot be planned (an unknown group, a name taken by a set Ferry did not make), per item */
  problems: Array<{ name: string; error: string }>;
  /** console-made assignments on Ferry's permission sets: reported, left alone */
  unmanaged: string[];
}

export interface SyncResult {
  applied: Array<SyncStep & { ok: boolean; error?: string }>;
  problems: SyncPlan['problems'];
}

export interface SyncProgress {
  done: number;
  total: number;
  step: string;
}

export interface PermissionSetSyncDeps {
  store: Store;
  clock: Clock;
  permissionSets: PermissionSets;
  /** a Ferry group's display name or user's userName by id; null when gone */
  principalName(type: 'group' | 'user', id: string): Promise<string | null>;
  /** Identity Center clients, or null when Ferry has no AWS side configured */
  identityCenter(): IdentityCenterClients | null;
  /** how long to wait between status polls, and how many (asynchronous assignment and provisioning) */
  pollIntervalMs?: number;
  maxPolls?: number;
}

/** The declared state to plan against. */
export interface WantedState {
  sets: PermissionSetSpec[];
  assignments: Array<
    Pick<PermissionSetAssignment, 'principalType' | 'principalId' | 'scopeType' | 'scopeId' | 'permissionSet'>
  >;
}

interface ActualSet {
  arn: string;
  spec: PermissionSetSpec;
  /** whether the boundary could be read (moto has no such operation) */
  boundaryKnown: boolean;
}

interface WantedAssignment {
  permissionSet: string;
  accountId: string;
  principalType: 'GROUP' | 'USER';
  principalId: string;
  principalName: string;
}

const key = (a: { permissionSet: string; accountId: string; principalType: string; principalId: string }) =>
  `${a.permissionSet}|${a.accountId}|${a.principalType}|${a.principalId}`;
const assignmentName = (a: Omit<WantedAssignment, 'principalId'>) =>
  `${a.permissionSet} → ${a.accountId} ← ${a.principalType.toLowerCase()}:${a.principalName}`;
const errorText = (err: unknown) => `${(err as Error).name ?? 'Error'}: ${(err as Error).message}`;
const unsupported = (err: unknown) =>
  /UnknownOperation|NotImplemented|not yet implemented|<!doctype/i.test(
    `${(err as Error).name} ${(err as Error).message}`,
  ) || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;

/**
 * Makes IAM Identity Center's permission sets and account assignments match what Ferry declares, for the
 * objects Ferry made (recorded in `iic_permission_sets` / `iic_assignments`, since Identity Center keeps no
 * tag on an assignment): plan (the dry run and `ferry iic drift`), then apply step by step, waiting for
 * each asynchronous request's status, and recording every outcome so a re-run converges.
 */
export class PermissionSetSync {
  #queue: Promise<unknown> = Promise.resolve();
  constructor(private readonly deps: PermissionSetSyncDeps) {}

  private clients(): IdentityCenterClients {
    const c = this.deps.identityCenter();
    if (!c) throw new Error('no AWS side is configured for IAM Identity Center');
    return c;
  }

  /** Whether anything is declared or was made (so a server with no permission sets never calls AWS). */
  async inUse(): Promise<boolean> {
    const db = this.deps.store.db;
    const declared = await db.selectFrom('permission_sets').select('name').limit(1).execute();
    const made = await db.selectFrom('iic_permission_sets').select('name').limit(1).execute();
    return declared.length + made.length > 0;
  }

  /** The AWS access portal URL (for the AWS CLI's own `sso` profiles). */
  async startUrl(): Promise<string> {
    return (await this.clients().instance()).startUrl;
  }

  /**
   * What applying would change. `wanted` replaces the declared state (a dry run of a tenant file compares
   * the file's permission sets, not the ones stored).
   */
  async plan(wanted?: WantedState): Promise<SyncPlan> {
    const c = this.clients();
    const { ssoAdmin } = c;
    const { instanceArn, startUrl } = await c.instance();
    const db = this.deps.store.db;
    const wantedSets = wanted?.sets ?? (await this.deps.permissionSets.list());
    const managed = new Map(
      (await db.selectFrom('iic_permission_sets').selectAll().execute()).map((r) => [r.name, r]),
    );
    const actual = await this.readSets(c, instanceArn);
    const steps: SyncStep[] = [];
    const problems: SyncPlan['problems'] = [];
    const unmanaged: string[] = [];
    const usable = new Map<string, string | null>(); // set name → arn (null: to be created)

    for (const spec of wantedSets) {
      const record = managed.get(spec.name);
      const there = actual.get(spec.name);
      if (there && (!record || (record.arn !== null && record.arn !== there.arn))) {
        problems.push({
          name: spec.name,
          error: `a permission set named ${spec.name} exists in Identity Center and was not made by Ferry; rename one of them (Ferry changes only what it made)`,
        });
        continue;
      }
      if (!there) {
        steps.push({
          action: 'create',
          kind: 'permission-set',
          name: spec.name,
          details: record?.arn ? ['deleted outside Ferry'] : [],
          drift: !!record?.arn,
        });
        usable.set(spec.name, null);
        continue;
      }
      usable.set(spec.name, there.arn);
      const details = specDiff(there, spec);
      if (details.length > 0)
        steps.push({ action: 'update', kind: 'permission-set', name: spec.name, details, drift: true });
    }

    // Assignments: wanted (Ferry's, expanded over OUs) against what Identity Center has on Ferry's sets.
    const wantedAssignments = new Map<string, WantedAssignment>();
    for (const a of wanted?.assignments ?? (await this.deps.permissionSets.assignments())) {
      if (!usable.has(a.permissionSet)) continue;
      const resolved = await this.resolvePrincipal(c, a).catch((err: unknown) => {
        problems.push({
          name: `${a.permissionSet} ← ${a.principalType}:${a.principalId}`,
          error: errorText(err),
        });
        return null;
      });
      if (!resolved) continue;
      const accounts = await this.deps.permissionSets.accountsOf(a);
      if (a.scopeType === 'ou' && accounts.length === 0)
        problems.push({
          name: `${a.permissionSet} ← ${a.principalType}:${resolved.name}`,
          error: `OU ${a.scopeId} holds no active account (as last discovered)`,
        });
      for (const accountId of accounts) {
        const w: WantedAssignment = {
          permissionSet: a.permissionSet,
          accountId,
          principalType: resolved.type,
          principalId: resolved.id,
          principalName: resolved.name,
        };
        wantedAssignments.set(key(w), w);
      }
    }
    const records = await db.selectFrom('iic_assignments').selectAll().execute();
    const recorded = new Map(
      records.map((r) => [
        key({
          ...r,
          permissionSet: r.permission_set,
          accountId: r.account_id,
          principalType: r.principal_type,
          principalId: r.principal_id,
        }),
        r,
      ]),
    );
    const accountsToRead = new Map<string, Set<string>>(); // set → accounts
    const note = (set: string, account: string) => {
      if (!accountsToRead.has(set)) accountsToRead.set(set, new Set());
      accountsToRead.get(set)!.add(account);
    };
    for (const w of wantedAssignments.values()) note(w.permissionSet, w.accountId);
    for (const r of records) note(r.permission_set, r.account_id);
    const present = new Set<string>();
    for (const [set, accounts] of accountsToRead) {
      const arn = usable.get(set) ?? actual.get(set)?.arn;
      if (!arn) continue;
      for (const accountId of accounts) {
        let token: string | undefined;
        do {
          const res = await ssoAdmin.send(
            new ssoAdminSdk.ListAccountAssignmentsCommand({
              InstanceArn: instanceArn,
              AccountId: accountId,
              PermissionSetArn: arn,
              NextToken: token,
            }),
          );
          for (const x of res.AccountAssignments ?? []) {
            const k = key({
              permissionSet: set,
              accountId,
              principalType: x.PrincipalType!,
              principalId: x.PrincipalId!,
            });
            present.add(k);
            if (!wantedAssignments.has(k) && !recorded.has(k))
              unmanaged.push(`${set} → ${accountId} ← ${x.PrincipalType}:${x.PrincipalId}`);
          }
          token = res.NextToken;
        } while (token);
      }
    }
    for (const [k, w] of wantedAssignments) {
      if (present.has(k)) continue;
      const r = recorded.get(k);
      steps.push({
        action: 'create',
        kind: 'account-assignment',
        name: assignmentName(w),
        details:
          r?.state === 'created'
            ? ['deleted outside Ferry']
            : r?.state === 'failed'
              ? [`retry: ${r.failure ?? ''}`]
              : [],
        drift: r?.state === 'created',
      });
    }
    for (const [k, r] of recorded) {
      if (wantedAssignments.has(k)) continue;
      const name = assignmentName({
        permissionSet: r.permission_set,
        accountId: r.account_id,
        principalType: r.principal_type,
        principalName: r.principal_name,
      });
      if (present.has(k))
        steps.push({ action: 'delete', kind: 'account-assignment', name, details: [], drift: false });
      else
        steps.push({
          action: 'delete',
          kind: 'account-assignment',
          name,
          details: ['already gone; forget it'],
          drift: false,
        });
    }
    for (const [name, record] of managed) {
      if (wantedSets.some((s) => s.name === name)) continue;
      steps.push({
        action: 'delete',
        kind: 'permission-set',
        name,
        details: actual.has(name) && actual.get(name)!.arn === record.arn ? [] : ['already gone; forget it'],
        drift: false,
      });
    }
    // Deletes of assignments before their permission set; creates of sets before their assignments.
    const order = (s: SyncStep) =>
      s.kind === 'permission-set' ? (s.action === 'delete' ? 3 : 0) : s.action === 'delete' ? 1 : 2;
    steps.sort((a, b) => order(a) - order(b));
    this.lastWanted = wantedAssignments;
    return { instanceArn, startUrl, steps, problems, unmanaged };
  }

  private lastWanted = new Map<string, WantedAssignment>();

  /** Plans, then applies each step; a failed step is reported and recorded, the others go on. */
  apply(
    ctx: AuditContext,
    onProgress?: (p: SyncProgress) => void,
    onPlan?: (plan: SyncPlan) => void,
  ): Promise<SyncResult> {
    const run = this.#queue.then(() => this.applyNow(ctx, onProgress, onPlan));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(
    ctx: AuditContext,
    onProgress?: (p: SyncProgress) => void,
    onPlan?: (plan: SyncPlan) => void,
  ): Promise<SyncResult> {
    const plan = await this.plan();
    onPlan?.(plan);
    const wanted = this.lastWanted;
    const c = this.clients();
    const applied: SyncResult['applied'] = [];
    const failedSets = new Set<string>();
    let done = 0;
    for (const step of plan.steps) {
      const setName = step.name.split(' → ')[0]!;
      let error: string | undefined;
      if (step.kind === 'account-assignment' && step.action === 'create' && failedSets.has(setName))
        error = `permission set ${setName} failed; not assigned`;
      else
        try {
          if (step.kind === 'permission-set') await this.applySet(c, plan.instanceArn, step);
          else await this.applyAssignment(c, plan.instanceArn, step, wanted);
        } catch (err) {
          error = errorText(err);
          if (step.kind === 'permission-set') failedSets.add(setName);
        }
      applied.push({ ...step, ok: error === undefined, ...(error ? { error } : {}) });
      await this.audit(ctx, step, error);
      onProgress?.({
        done: ++done,
        total: plan.steps.length,
        step: `${step.action} ${step.kind} ${step.name}`,
      });
    }
    return { applied, problems: plan.problems };
  }

  private async audit(ctx: AuditContext, step: SyncStep, error: string | undefined): Promise<void> {
    const { store, clock } = this.deps;
    await appendAudit(store.db, store.engine, clock, {
      type: `identity-center.${step.kind}.${step.action}d`
        .replace('deleted', 'deleted')
        .replace('created', 'created')
        .replace('updated', 'updated'),
      outcome: error ? 'failure' : 'success',
      actor: ctx.actor,
      subject: step.name,
      ip: ctx.ip,
      requestId: ctx.requestId,
      data: { details: step.details, drift: step.drift, ...(error ? { error } : {}) },
    });
  }

  private async applySet(c: IdentityCenterClients, instanceArn: string, step: SyncStep): Promise<void> {
    const { store, clock } = this.deps;
    const db = store.db;
    const now = () => iso(clock.now());
    if (step.action === 'delete') {
      const record = await db
        .selectFrom('iic_permission_sets')
        .selectAll()
        .where('name', '=', step.name)
        .executeTakeFirst();
      if (record?.arn && step.details.length === 0)
        await c.ssoAdmin.send(
          new ssoAdminSdk.DeletePermissionSetCommand({
            InstanceArn: instanceArn,
            PermissionSetArn: record.arn,
          }),
        );
      await db.deleteFrom('iic_permission_sets').where('name', '=', step.name).execute();
      return;
    }
    const spec = await this.deps.permissionSets.get(step.name);
    let arn: string;
    if (step.action === 'create') {
      // Recorded before the call: a crash after AWS made it leaves a row that the next plan resolves by name.
      await db.deleteFrom('iic_permission_sets').where('name', '=', spec.name).execute();
      await db
        .insertInto('iic_permission_sets')
        .values({ name: spec.name, instance_arn: instanceArn, arn: null, updated_at: now() })
        .execute();
      const res = await c.ssoAdmin.send(
        new ssoAdminSdk.CreatePermissionSetCommand({
          InstanceArn: instanceArn,
          Name: spec.name,
          ...(spec.description ? { Description: spec.description } : {}),
          SessionDuration: spec.sessionDuration,
          ...(spec.relayState ? { RelayState: spec.relayState } : {}),
        }),
      );
      arn = res.PermissionSet!.PermissionSetArn!;
      await db
        .updateTable('iic_permission_sets')
        .set({ arn, updated_at: now() })
        .where('name', '=', spec.name)
        .execute();
    } else {
      const record = await db
        .selectFrom('iic_permission_sets')
        .selectAll()
        .where('name', '=', step.name)
        .executeTakeFirstOrThrow();
      arn = record.arn!;
      await c.ssoAdmin.send(
        new ssoAdminSdk.UpdatePermissionSetCommand({
          InstanceArn: instanceArn,
          PermissionSetArn: arn,
          Description: spec.description ?? '',
          SessionDuration: spec.sessionDuration,
          RelayState: spec.relayState ?? '',
        }),
      );
    }
    const there = (await this.readSet(c, instanceArn, arn)).spec;
    const ids = { InstanceArn: instanceArn, PermissionSetArn: arn };
    for (const p of there.managedPolicies.filter((x) => !spec.managedPolicies.includes(x)))
      await c.ssoAdmin.send(
        new ssoAdminSdk.DetachManagedPolicyFromPermissionSetCommand({ ...ids, ManagedPolicyArn: p }),
      );
    for (const p of spec.managedPolicies.filter((x) => !there.managedPolicies.includes(x)))
      await c.ssoAdmin.send(
        new ssoAdminSdk.AttachManagedPolicyToPermissionSetCommand({ ...ids, ManagedPolicyArn: p }),
      );
    const ref = (p: { name: string; path: string }) => `${p.path}${p.name}`;
    const wantedRefs = new Set(spec.customerManagedPolicies.map(ref));
    const thereRefs = new Set(there.customerManagedPolicies.map(ref));
    for (const p of there.customerManagedPolicies.filter((x) => !wantedRefs.has(ref(x))))
      await c.ssoAdmin.send(
        new ssoAdminSdk.DetachCustomerManagedPolicyReferenceFromPermissionSetCommand({
          ...ids,
          CustomerManagedPolicyReference: { Name: p.name, Path: p.path },
        }),
      );
    for (const p of spec.customerManagedPolicies.filter((x) => !thereRefs.has(ref(x))))
      await c.ssoAdmin.send(
        new ssoAdminSdk.AttachCustomerManagedPolicyReferenceToPermissionSetCommand({
          ...ids,
          CustomerManagedPolicyReference: { Name: p.name, Path: p.path },
        }),
      );
    if (spec.inlinePolicy !== there.inlinePolicy) {
      if (spec.inlinePolicy)
        await c.ssoAdmin.send(
          new ssoAdminSdk.PutInlinePolicyToPermissionSetCommand({ ...ids, InlinePolicy: spec.inlinePolicy }),
        );
      else await c.ssoAdmin.send(new ssoAdminSdk.DeleteInlinePolicyFromPermissionSetCommand(ids));
    }
    if (canonicalJson(spec.permissionsBoundary) !== canonicalJson(there.permissionsBoundary)) {
      const b = spec.permissionsBoundary;
      if (b)
        await c.ssoAdmin.send(
          new ssoAdminSdk.PutPermissionsBoundaryToPermissionSetCommand({
            ...ids,
            PermissionsBoundary:
              'managedPolicyArn' in b
                ? { ManagedPolicyArn: b.managedPolicyArn }
                : {
                    CustomerManagedPolicyReference: {
                      Name: b.customerManagedPolicy.name,
                      Path: b.customerManagedPolicy.path,
                    },
                  },
          }),
        );
      else await c.ssoAdmin.send(new ssoAdminSdk.DeletePermissionsBoundaryFromPermissionSetCommand(ids));
    }
    if (step.action === 'update') {
      // A changed permission set reaches the accounts it is provisioned to only when provisioned again.
      const res = await c.ssoAdmin.send(
        new ssoAdminSdk.ProvisionPermissionSetCommand({ ...ids, TargetType: 'ALL_PROVISIONED_ACCOUNTS' }),
      );
      let status = res.PermissionSetProvisioningStatus;
      for (let i = 0; status?.Status === 'IN_PROGRESS'; i++) {
        if (i >= (this.deps.maxPolls ?? 60))
          throw new Error(`provisioning ${spec.name} still in progress; run apply again`);
        await sleep(this.deps.pollIntervalMs ?? 1000);
        status = (
          await c.ssoAdmin.send(
            new ssoAdminSdk.DescribePermissionSetProvisioningStatusCommand({
              InstanceArn: instanceArn,
              ProvisionPermissionSetRequestId: status.RequestId,
            }),
          )
        ).PermissionSetProvisioningStatus;
      }
      if (status?.Status === 'FAILED')
        throw new Error(`provisioning failed: ${status.FailureReason ?? 'no reason given'}`);
    }
  }

  private async applyAssignment(
    c: IdentityCenterClients,
    instanceArn: string,
    step: SyncStep,
    wanted: Map<string, WantedAssignment>,
  ): Promise<void> {
    const db = this.deps.store.db;
    const now = () => iso(this.deps.clock.now());
    const [setName, rest] = step.name.split(' → ') as [string, string];
    const [accountId, who] = rest.split(' ← ') as [string, string];
    const record = await db
      .selectFrom('iic_permission_sets')
      .selectAll()
      .where('name', '=', setName)
      .executeTakeFirst();
    const arn = record?.arn;
    if (step.action === 'create') {
      const w = [...wanted.values()].find((x) => assignmentName(x) === step.name)!;
      if (!arn) throw new Error(`permission set ${setName} is not in Identity Center`);
      const row = {
        permission_set: setName,
        account_id: accountId,
        principal_type: w.principalType,
        principal_id: w.principalId,
        principal_name: w.principalName,
      };
      const where = db
        .deleteFrom('iic_assignments')
        .where('permission_set', '=', setName)
        .where('account_id', '=', accountId)
        .where('principal_type', '=', w.principalType)
        .where('principal_id', '=', w.principalId);
      await where.execute();
      await db
        .insertInto('iic_assignments')
        .values({ ...row, state: 'creating', request_id: null, failure: null, updated_at: now() })
        .execute();
      const setState = (state: 'created' | 'failed', requestId: string | null, failure: string | null) =>
        db
          .updateTable('iic_assignments')
          .set({ state, request_id: requestId, failure, updated_at: now() })
          .where('permission_set', '=', setName)
          .where('account_id', '=', accountId)
          .where('principal_type', '=', w.principalType)
          .where('principal_id', '=', w.principalId)
          .execute();
      try {
        const res = await c.ssoAdmin.send(
          new ssoAdminSdk.CreateAccountAssignmentCommand({
            InstanceArn: instanceArn,
            TargetId: accountId,
            TargetType: 'AWS_ACCOUNT',
            PermissionSetArn: arn,
            PrincipalType: w.principalType,
            PrincipalId: w.principalId,
          }),
        );
        let status = res.AccountAssignmentCreationStatus;
        for (let i = 0; status?.Status === 'IN_PROGRESS'; i++) {
          if (i >= (this.deps.maxPolls ?? 60))
            throw new Error('assignment still in progress; run apply again');
          await sleep(this.deps.pollIntervalMs ?? 1000);
          status = (
            await c.ssoAdmin.send(
              new ssoAdminSdk.DescribeAccountAssignmentCreationStatusCommand({
                InstanceArn: instanceArn,
                AccountAssignmentCreationRequestId: status.RequestId,
              }),
            )
          ).AccountAssignmentCreationStatus;
        }
        if (status?.Status === 'FAILED')
          throw new Error(`assignment failed: ${status.FailureReason ?? 'no reason given'}`);
        await setState('created', status?.RequestId ?? null, null);
      } catch (err) {
        await setState('failed', null, errorText(err));
        throw err;
      }
      return;
    }
    // delete: only an assignment Ferry recorded
    const [type, name] = [
      who.slice(0, who.indexOf(':')).toUpperCase() as 'GROUP' | 'USER',
      who.slice(who.indexOf(':') + 1),
    ];
    const r = await db
      .selectFrom('iic_assignments')
      .selectAll()
      .where('permission_set', '=', setName)
      .where('account_id', '=', accountId)
      .where('principal_type', '=', type)
      .where('principal_name', '=', name)
      .executeTakeFirstOrThrow();
    if (arn && step.details.length === 0) {
      await db
        .updateTable('iic_assignments')
        .set({ state: 'deleting', updated_at: now() })
        .where('permission_set', '=', setName)
        .where('account_id', '=', accountId)
        .where('principal_type', '=', type)
        .where('principal_id', '=', r.principal_id)
        .execute();
      const res = await c.ssoAdmin.send(
        new ssoAdminSdk.DeleteAccountAssignmentCommand({
          InstanceArn: instanceArn,
          TargetId: accountId,
          TargetType: 'AWS_ACCOUNT',
          PermissionSetArn: arn,
          PrincipalType: type,
          PrincipalId: r.principal_id,
        }),
      );
      let status = res.AccountAssignmentDeletionStatus;
      for (let i = 0; status?.Status === 'IN_PROGRESS'; i++) {
        if (i >= (this.deps.maxPolls ?? 60)) throw new Error('removal still in progress; run apply again');
        await sleep(this.deps.pollIntervalMs ?? 1000);
        status = (
          await c.ssoAdmin.send(
            new ssoAdminSdk.DescribeAccountAssignmentDeletionStatusCommand({
              InstanceArn: instanceArn,
              AccountAssignmentDeletionRequestId: status.RequestId,
            }),
          )
        ).AccountAssignmentDeletionStatus;
      }
      if (status?.Status === 'FAILED')
        throw new Error(`removal failed: ${status.FailureReason ?? 'no reason given'}`);
    }
    await db
      .deleteFrom('iic_assignments')
      .where('permission_set', '=', setName)
      .where('account_id', '=', accountId)
      .where('principal_type', '=', type)
      .where('principal_id', '=', r.principal_id)
      .execute();
  }

  private async resolvePrincipal(
    c: IdentityCenterClients,
    a: Pick<PermissionSetAssignment, 'principalType' | 'principalId'>,
  ): Promise<{ type: 'GROUP' | 'USER'; id: string; name: string }> {
    const name = await this.deps.principalName(a.principalType, a.principalId);
    if (!name) throw new Error(`${a.principalType} ${a.principalId} no longer exists in Ferry`);
    const db = this.deps.store.db;
    // What Ferry's own SCIM push recorded first; else the identity store (groups synced from Entra directly).
    const pushed =
      a.principalType === 'group'
        ? await db
            .selectFrom('identity_center_groups')
            .select('remote_id')
            .where('group_id', '=', a.principalId)
            .executeTakeFirst()
        : await db
            .selectFrom('identity_center_users')
            .select('remote_id')
            .where('user_id', '=', a.principalId)
            .executeTakeFirst();
    const type = a.principalType === 'group' ? 'GROUP' : 'USER';
    const id = pushed?.remote_id ?? (await c.principalId(type, name));
    if (!id)
      throw new Error(
        `${a.principalType} ${name} is not in Identity Center (push it first: ferry scim push)`,
      );
    return { type, id, name };
  }

  private async readSets(c: IdentityCenterClients, instanceArn: string): Promise<Map<string, ActualSet>> {
    const out = new Map<string, ActualSet>();
    let token: string | undefined;
    const arns: string[] = [];
    do {
      const res = await c.ssoAdmin.send(
        new ssoAdminSdk.ListPermissionSetsCommand({ InstanceArn: instanceArn, NextToken: token }),
      );
      arns.push(...(res.PermissionSets ?? []));
      token = res.NextToken;
    } while (token);
    for (const arn of arns) {
      const set = await this.readSet(c, instanceArn, arn);
      out.set(set.spec.name, set);
    }
    return out;
  }

  private async readSet(c: IdentityCenterClients, instanceArn: string, arn: string): Promise<ActualSet> {
    const ids = { InstanceArn: instanceArn, PermissionSetArn: arn };
    const d = (await c.ssoAdmin.send(new ssoAdminSdk.DescribePermissionSetCommand(ids))).PermissionSet!;
    const managed =
      (await c.ssoAdmin.send(new ssoAdminSdk.ListManagedPoliciesInPermissionSetCommand(ids)))
        .AttachedManagedPolicies ?? [];
    const customer =
      (await c.ssoAdmin.send(new ssoAdminSdk.ListCustomerManagedPolicyReferencesInPermissionSetCommand(ids)))
        .CustomerManagedPolicyReferences ?? [];
    const inline = (await c.ssoAdmin.send(new ssoAdminSdk.GetInlinePolicyForPermissionSetCommand(ids)))
      .InlinePolicy;
    let boundary: PermissionsBoundary | null = null;
    let boundaryKnown = true;
    try {
      const b = (await c.ssoAdmin.send(new ssoAdminSdk.GetPermissionsBoundaryForPermissionSetCommand(ids)))
        .PermissionsBoundary;
      if (b?.ManagedPolicyArn) boundary = { managedPolicyArn: b.ManagedPolicyArn };
      else if (b?.CustomerManagedPolicyReference?.Name)
        boundary = {
          customerManagedPolicy: {
            name: b.CustomerManagedPolicyReference.Name,
            path: b.CustomerManagedPolicyReference.Path ?? '/',
          },
        };
    } catch (err) {
      if ((err as Error).name === 'ResourceNotFoundException') boundary = null;
      else if (unsupported(err)) boundaryKnown = false;
      else throw err;
    }
    return {
      arn,
      boundaryKnown,
      spec: {
        name: d.Name!,
        description: d.Description || null,
        sessionDuration: d.SessionDuration ?? 'PT1H',
        relayState: d.RelayState || null,
        managedPolicies: managed.map((p) => p.Arn!).sort(),
        customerManagedPolicies: customer
          .map((p) => ({ name: p.Name!, path: p.Path ?? '/' }))
          .sort((a, b) => `${a.path}${a.name}`.localeCompare(`${b.path}${b.name}`)),
        inlinePolicy: inline ? canonicalJson(JSON.parse(inline)) : null,
        permissionsBoundary: boundary,
      },
    };
  }
}

/** The fields that differ, in words: `sessionDuration PT1H → PT4H`. */
function specDiff(there: ActualSet, wanted: PermissionSetSpec): string[] {
  const out: string[] = [];
  const a = there.spec;
  if ((a.description ?? '') !== (wanted.description ?? '')) out.push('description');
  if (a.sessionDuration !== wanted.sessionDuration)
    out.push(`sessionDuration ${a.sessionDuration} → ${wanted.sessionDuration}`);
  if ((a.relayState ?? '') !== (wanted.relayState ?? '')) out.push('relayState');
  for (const p of wanted.managedPolicies.filter((x) => !a.managedPolicies.includes(x))) out.push(`+ ${p}`);
  for (const p of a.managedPolicies.filter((x) => !wanted.managedPolicies.includes(x))) out.push(`- ${p}`);
  const ref = (p: { name: string; path: string }) => `${p.path}${p.name}`;
  for (const p of wanted.customerManagedPolicies.filter(
    (x) => !a.customerManagedPolicies.some((y) => ref(y) === ref(x)),
  ))
    out.push(`+ customer managed ${ref(p)}`);
  for (const p of a.customerManagedPolicies.filter(
    (x) => !wanted.customerManagedPolicies.some((y) => ref(y) === ref(x)),
  ))
    out.push(`- customer managed ${ref(p)}`);
  if ((a.inlinePolicy ?? '') !== (wanted.inlinePolicy ?? '')) out.push('inline policy');
  // moto cannot say which boundary is set; then only a wanted boundary is (re)applied.
  if (
    (there.boundaryKnown || wanted.permissionsBoundary !== null) &&
    canonicalJson(a.permissionsBoundary) !== canonicalJson(wanted.permissionsBoundary)
  )
    out.push('permissions boundary');
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
