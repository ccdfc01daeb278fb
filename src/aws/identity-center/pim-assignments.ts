import type { AccountAssignmentOperationStatus, SSOAdminClient } from '@aws-sdk/client-sso-admin';
import type { Activation, PimPerson } from '../../access/pim/activations.js';
import type { Eligibility } from '../../access/pim/eligibilities.js';
import type { StoredTarget } from '../../access/pim/targets.js';
import { InvalidInput } from '../../errors.js';
import type { DomainEvent } from '../../events.js';
import { Problem } from '../../problem.js';
import type { Store } from '../../store/open.js';
import { ssoAdminSdk } from '../sdk.js';
import type { PermissionSetLookup, PermissionSetRef } from './permission-set-lookup.js';

type AssignmentEvent = Extract<DomainEvent, { type: 'pim.account-assignment-requested' }>;

/** What the handler needs of PIM: read an activation and its eligibility, record what it found. */
export interface PimEffectsPort {
  get(id: string): Promise<Activation>;
  recordEffect(
    id: string,
    effect: { state: string; detail: string | null; onlyFrom?: string[] },
    audit?: { type: string; outcome: 'success' | 'failure'; data: Record<string, unknown> },
  ): Promise<boolean>;
}

export interface PimAssignmentsDeps {
  store: Store;
  sso: SSOAdminClient;
  lookup: PermissionSetLookup;
  activations: PimEffectsPort;
  eligibilities: { get(id: string): Promise<Eligibility> };
  /**
   * The identity store, for a person the SCIM push has no record of (users synced into Identity Center
   * some other way, and the demo's local AWS, which cannot receive SCIM): GetUserId by userName.
   */
  identityStore?: { principalId(type: 'USER', name: string): Promise<string | null> };
  /**
   * The SessionDuration (seconds) Ferry itself declares for a permission set, or null when Ferry does not
   * manage it: a declared set is checked against the declaration (the sync makes Identity Center match),
   * so a tenant file may name a set and an eligibility for it in one apply.
   */
  declaredSessionSeconds?: (name: string) => Promise<number | null>;
  /** waits between status polls; tests pass a short one */
  sleep?: (ms: number) => Promise<void>;
  /** ms between DescribeAccountAssignment*Status calls, and how long to wait before retrying later */
  pollIntervalMs?: number;
  pollTimeoutMs?: number;
}

/** The person has no Identity Center user yet (the SCIM push has not created one): nothing to assign to. */
export class NoIdentityCenterUser extends Problem {
  constructor(userName: string) {
    super(
      409,
      'identity-center-user-missing',
      'Conflict',
      `${userName} has no IAM Identity Center user yet, so no permission set can be assigned to them; ` +
        'an administrator must connect Identity Center (`ferry iic connect`) and let the SCIM push create the user (`ferry iic sync`)',
    );
  }
}

/** A failure of the assignment API: the outbox retries with backoff; the activation shows it meanwhile. */
class AssignmentFailed extends Error {}

const ENDED = new Set(['expired', 'revoked']);
/** A create's outcome lands only while the create holds the effect (the end may have taken it over). */
const APPLYING = ['applying'];

/**
 * PIM for IAM Identity Center permission sets: an activation becomes the person's own account
 * assignment (PrincipalType USER) for its duration. Create and delete are confirmed through
 * DescribeAccountAssignmentCreation/DeletionStatus; the outcome is written to the activation and the
 * audit trail. Every step reads the current state first, so the at-least-once outbox may replay it.
 */
export class PimAccountAssignments {
  constructor(private readonly deps: PimAssignmentsDeps) {}

  /** The Identity Center user id of a person (the SCIM push's record, else the identity store's), or null. */
  async identityCenterUserId(userId: string, userName?: string): Promise<string | null> {
    const row = await this.deps.store.db
      .selectFrom('identity_center_users')
      .select('remote_id')
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (row?.remote_id) return row.remote_id;
    if (!userName || !this.deps.identityStore) return null;
    return this.deps.identityStore.principalId('USER', userName).catch(() => null);
  }

  /** Before a request is written: a permission set can only be activated by someone Identity Center knows. */
  async precheck(target: StoredTarget, person: PimPerson): Promise<void> {
    if (target.kind !== 'permission-set') return;
    if (!(await this.identityCenterUserId(person.id, person.userName)))
      throw new NoIdentityCenterUser(person.userName);
  }

  /**
   * Before an eligibility is stored (decision 0029): the permission set exists, and its SessionDuration
   * is not longer than the eligibility's maxDuration, so a session opened during an activation cannot
   * outlive it by more than the activation itself could last.
   */
  async checkPermissionSet(q: { accountId: string; name: string; maxDuration: number }): Promise<void> {
    const declared = await this.deps.declaredSessionSeconds?.(q.name);
    const ps =
      declared != null ? { name: q.name, sessionDurationSeconds: declared } : await this.find(q.name);
    if (!ps)
      throw new InvalidInput(
        `Identity Center has no permission set named ${q.name} (create it first, e.g. with \`ferry apply\`)`,
        'target',
      );
    if (ps.sessionDurationSeconds > q.maxDuration)
      throw new InvalidInput(
        `permission set ${q.name} has SessionDuration ${ps.sessionDurationSeconds}s, longer than the eligibility's maxDuration ${q.maxDuration}s: ` +
          'Identity Center sessions outlive the assignment by up to their duration, so an elevated permission set must not last longer than one activation may (shorten its SessionDuration, e.g. PT1H)',
        'maxDuration',
      );
  }

  private async find(name: string): Promise<PermissionSetRef | null> {
    try {
      return await this.deps.lookup.byName(name);
    } catch (err) {
      throw new Problem(
        502,
        'identity-center-unavailable',
        'Bad Gateway',
        `IAM Identity Center could not be asked about permission set ${name}: ${(err as Error).message}`,
      );
    }
  }

  /** The outbox handler of `pim.account-assignment-requested`. */
  async handle(e: AssignmentEvent): Promise<void> {
    if (e.action === 'create') await this.create(e);
    else await this.delete(e);
  }

  private async create(e: AssignmentEvent): Promise<void> {
    const { activations } = this.deps;
    const activation = await activations.get(e.activationId);
    // Ended before this ran (the end saw 'pending' and undid nothing): assigning now would outlive it.
    if (activation.state !== 'active') return;
    // Claim the effect; a redelivery after a crash finds 'applying' and carries on.
    const claimed = await activations.recordEffect(e.activationId, {
      state: 'applying',
      detail: null,
      onlyFrom: ['pending', 'failed', 'applying'],
    });
    if (!claimed) return;
    const principalId = await this.identityCenterUserId(e.userId, e.userName);
    if (!principalId) {
      await this.fail(e, `${e.userName} has no Identity Center user yet; retrying`, APPLYING);
      throw new AssignmentFailed(`${e.userName} has no Identity Center user`);
    }
    const ps = await this.deps.lookup.byName(e.permissionSet);
    if (!ps) {
      await this.fail(e, `Identity Center has no permission set ${e.permissionSet}; retrying`, APPLYING);
      throw new AssignmentFailed(`no permission set ${e.permissionSet}`);
    }
    // Drift since the eligibility was checked: refuse rather than grant longer sessions than allowed.
    const eligibility = await this.deps.eligibilities.get(activation.eligibilityId).catch(() => null);
    const max = eligibility?.maxDuration ?? activation.durationSeconds;
    if (ps.sessionDurationSeconds > max) {
      await this.fail(
        e,
        `not assigned: permission set ${ps.name} now has SessionDuration ${ps.sessionDurationSeconds}s, longer than the eligibility's ${max}s`,
        APPLYING,
      );
      return;
    }
    if (await this.assigned(ps, e.account, principalId)) {
      // The person holds it already by a direct assignment Ferry did not make: leave it, and never delete it.
      await activations.recordEffect(
        e.activationId,
        {
          state: 'kept',
          detail: `${e.userName} was already assigned ${ps.name} in ${e.account}; left as it was`,
          onlyFrom: APPLYING,
        },
        { type: 'assignment-kept', outcome: 'success', data: this.facts(ps, e, principalId) },
      );
      return;
    }
    const started = await this.deps.sso.send(
      new ssoAdminSdk.CreateAccountAssignmentCommand({
        InstanceArn: ps.instanceArn,
        TargetId: e.account,
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: ps.arn,
        PrincipalType: 'USER',
        PrincipalId: principalId,
      }),
    );
    const status = await this.confirm(ps, started.AccountAssignmentCreationStatus, 'create');
    if (status.Status !== 'SUCCEEDED') {
      await this.fail(
        e,
        `CreateAccountAssignment ${status.Status}: ${status.FailureReason ?? 'no reason given'}`,
        APPLYING,
      );
      throw new AssignmentFailed(`CreateAccountAssignment ${status.Status}`);
    }
    const recorded = await activations.recordEffect(
      e.activationId,
      {
        state: 'applied',
        detail: `assigned ${ps.name} in ${e.account} (request ${status.RequestId})`,
        onlyFrom: APPLYING,
      },
      {
        type: 'assignment-created',
        outcome: 'success',
        data: this.facts(ps, e, principalId, status.RequestId),
      },
    );
    // The activation ended while the assignment was being made: undo it here, whatever the end recorded.
    if (!recorded && ENDED.has((await activations.get(e.activationId)).state))
      await this.delete({ ...e, action: 'delete' }, true);
  }

  private async delete(e: AssignmentEvent, force = false): Promise<void> {
    const { activations } = this.deps;
    const activation = await activations.get(e.activationId);
    if (!force && (activation.effect?.state === 'kept' || activation.effect?.state === 'removed')) return;
    const principalId = await this.identityCenterUserId(e.userId, e.userName);
    const ps = principalId ? await this.deps.lookup.byName(e.permissionSet) : null;
    if (!principalId || !ps || !(await this.assigned(ps, e.account, principalId))) {
      await activations.recordEffect(
        e.activationId,
        { state: 'removed', detail: 'no assignment to remove' },
        {
          type: 'assignment-deleted',
          outcome: 'success',
          data: { account: e.account, permissionSet: e.permissionSet, alreadyGone: true },
        },
      );
      return;
    }
    const started = await this.deps.sso.send(
      new ssoAdminSdk.DeleteAccountAssignmentCommand({
        InstanceArn: ps.instanceArn,
        TargetId: e.account,
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: ps.arn,
        PrincipalType: 'USER',
        PrincipalId: principalId,
      }),
    );
    const status = await this.confirm(ps, started.AccountAssignmentDeletionStatus, 'delete');
    if (status.Status !== 'SUCCEEDED') {
      await this.fail(
        e,
        `DeleteAccountAssignment ${status.Status}: ${status.FailureReason ?? 'no reason given'}`,
      );
      throw new AssignmentFailed(`DeleteAccountAssignment ${status.Status}`);
    }
    await activations.recordEffect(
      e.activationId,
      {
        state: 'removed',
        detail: `assignment of ${ps.name} in ${e.account} deleted (request ${status.RequestId})`,
      },
      {
        type: 'assignment-deleted',
        outcome: 'success',
        data: this.facts(ps, e, principalId, status.RequestId),
      },
    );
  }

  /** Whether the person holds the permission set in the account by a USER assignment. */
  private async assigned(ps: PermissionSetRef, account: string, principalId: string): Promise<boolean> {
    let token: string | undefined;
    do {
      const page = await this.deps.sso.send(
        new ssoAdminSdk.ListAccountAssignmentsCommand({
          InstanceArn: ps.instanceArn,
          AccountId: account,
          PermissionSetArn: ps.arn,
          NextToken: token,
        }),
      );
      if (
        (page.AccountAssignments ?? []).some(
          (a) => a.PrincipalType === 'USER' && a.PrincipalId === principalId,
        )
      )
        return true;
      token = page.NextToken;
    } while (token);
    return false;
  }

  /** Polls the asynchronous status until it leaves IN_PROGRESS (or gives up: the outbox retries). */
  private async confirm(
    ps: PermissionSetRef,
    first: AccountAssignmentOperationStatus | undefined,
    what: 'create' | 'delete',
  ): Promise<AccountAssignmentOperationStatus> {
    if (!first?.RequestId) throw new AssignmentFailed(`${what}: Identity Center returned no request id`);
    const interval = this.deps.pollIntervalMs ?? 1000;
    const timeout = this.deps.pollTimeoutMs ?? 60_000;
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
    let status = first;
    for (let waited = 0; status.Status === 'IN_PROGRESS'; waited += interval) {
      if (waited >= timeout) throw new AssignmentFailed(`${what} still in progress after ${timeout} ms`);
      await sleep(interval);
      status =
        what === 'create'
          ? ((
              await this.deps.sso.send(
                new ssoAdminSdk.DescribeAccountAssignmentCreationStatusCommand({
                  InstanceArn: ps.instanceArn,
                  AccountAssignmentCreationRequestId: first.RequestId,
                }),
              )
            ).AccountAssignmentCreationStatus ?? status)
          : ((
              await this.deps.sso.send(
                new ssoAdminSdk.DescribeAccountAssignmentDeletionStatusCommand({
                  InstanceArn: ps.instanceArn,
                  AccountAssignmentDeletionRequestId: first.RequestId,
                }),
              )
            ).AccountAssignmentDeletionStatus ?? status);
    }
    return status;
  }

  private fail(e: AssignmentEvent, detail: string, onlyFrom?: string[]) {
    return this.deps.activations.recordEffect(
      e.activationId,
      { state: 'failed', detail, ...(onlyFrom ? { onlyFrom } : {}) },
      {
        type: e.action === 'create' ? 'assignment-failed' : 'assignment-removal-failed',
        outcome: 'failure',
        data: { account: e.account, permissionSet: e.permissionSet, detail },
      },
    );
  }

  private facts(ps: PermissionSetRef, e: AssignmentEvent, principalId: string, requestId?: string) {
    return {
      account: e.account,
      permissionSet: ps.name,
      permissionSetArn: ps.arn,
      principalType: 'USER',
      principalId,
      ...(requestId ? { requestId } : {}),
    };
  }
}
