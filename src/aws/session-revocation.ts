import type { Kysely } from 'kysely';
import { type AwsAccount, type AwsAccounts, MAX_SESSION_SECONDS } from '../access/aws-accounts.js';
import { type AuditContext, systemActor } from '../audit/actor.js';
import { auditAppended, auditRow } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import type { Store } from '../store/open.js';
import type { Database, IssuedCredentialsTable } from '../store/schema.js';
import { type AccountClients, checkCallerAccount } from './account-clients.js';
import {
  cutoffText,
  REVOCATION_POLICY_NAME,
  type RevokedIdentity,
  revocationPolicy,
  stillNeeded,
} from './revocation-policy.js';
import { iamSdk } from './sdk.js';

/** The person whose sessions end; their source identities come from what the ledger says was issued. */
export interface RevocationPerson {
  userId: string;
  userName: string;
}

/** An AWS role, as the ledger's targets name it (aws:<account>/<role>). */
export interface RoleRef {
  account: string;
  role: string;
}

export interface RevokeOptions {
  /** why, in words for the audit trail: "user deactivated", "activation expired" */
  reason: string;
  /** only this role (PIM: an activation ended); all roles the person used when omitted */
  only?: RoleRef;
  ctx?: AuditContext;
}

export interface RoleRevocation {
  target: string;
  /** the IAM role the deny was written on, in the account's partition (arn:aws-us-gov:iam::…) */
  roleArn: string;
  sourceIdentities: string[];
  /** sessions of these identities issued before it are denied (ISO, whole seconds) */
  cutoff: string;
  policyName: string;
  outcome: 'revoked' | 'failed';
  error?: string;
}

export interface RevocationReport {
  roles: RoleRevocation[];
  /** ledger rows now marked revoked */
  credentialsRevoked: number;
  /** live credentials recorded without a SourceIdentity: no per-person deny can reach them */
  unnarrowable: number;
}

/** Some roles could not be changed; the others were. Thrown so the outbox retries the event. */
export class SessionRevocationIncomplete extends Error {
  constructor(readonly report: RevocationReport) {
    const failed = report.roles.filter((r) => r.outcome === 'failed');
    super(
      `revoking sessions failed on ${failed.map((r) => `${r.target} (${r.error})`).join(', ')}; ` +
        `${report.roles.length - failed.length} other role(s) done`,
    );
    this.name = 'SessionRevocationIncomplete';
  }
}

/**
 * Opens the SDK clients for one registered AWS account: its partition's region and its endpoint, exactly as
 * credential issuance reaches it (wire it with accountConnection).
 */
export type ConnectAccount = (account: AwsAccount) => AccountClients;

export interface SessionRevokerOptions {
  /** added to every cutoff: Ferry's clock and AWS's may disagree by this much */
  clockSkewSeconds: number;
}

const REVOCABLE_KINDS = ['saml-assertion', 'sts-credentials'] as const;
const TARGET = /^aws:(\d{12})\/([\w+=,.@-]{1,64})$/;
/** rewriting the policy again because someone changed the role's revocations meanwhile: a bounded number of times */
const MAX_APPLY_ROUNDS = 5;

interface LiveCredential {
  row: IssuedCredentialsTable;
  roles: RoleRef[];
  sourceIdentity: string | null;
}

const targetOf = (r: RoleRef) => `aws:${r.account}/${r.role}`;

/** A role's entries and the version of aws_revocation_policies they make. */
interface RoleState {
  version: number;
  entries: RevokedIdentity[];
}

/**
 * Ends a person's live AWS sessions, role by role, with the FerryRevokedSessions inline deny
 * (see revocation-policy.ts). What each role's policy must say is kept in the database and the policy is
 * rendered from it, so concurrent revocations on one role (several instances) never lose each other's
 * entries; every step is idempotent, as outbox handlers run at least once.
 */
export class SessionRevoker {
  private readonly checkedAccounts = new Set<string>();
  private readonly clients = new Map<string, AccountClients>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly accounts: AwsAccounts,
    private readonly connect: ConnectAccount,
    private readonly options: SessionRevokerOptions,
  ) {}

  /**
   * Denies every session the person may still hold, on every role the ledger says they received
   * credentials for, when issued before `requestedAt` (moved later when a SAML assertion issued before
   * it could still be redeemed after it). Marks those ledger rows revoked.
   */
  async revokeLiveSessions(
    person: RevocationPerson,
    requestedAt: Date,
    options: RevokeOptions,
  ): Promise<RevocationReport> {
    const now = this.clock.now();
    const live = (await this.liveCredentials(person.userId, now)).filter(
      (c) => !options.only || c.roles.some((r) => targetOf(r) === targetOf(options.only!)),
    );
    const ctx = options.ctx ?? { actor: systemActor('session-revoker') };
    // Every audit event of this revocation is written with the ledger's "revoked" marks, in one
    // transaction at the end: one commit instead of one per role (offboarding's latency is mostly round trips).
    const audits: Array<{ type: string; outcome: 'success' | 'failure'; data: Record<string, unknown> }> = [];
    const unnarrowable = live.filter((c) => c.sourceIdentity === null);
    if (unnarrowable.length > 0) {
      audits.push({
        type: 'aws.sessions-revoke-failed',
        outcome: 'failure',
        data: {
          userId: person.userId,
          reason: options.reason,
          error: 'credentials were issued without a SourceIdentity; a per-person deny cannot reach them',
          credentials: unnarrowable.map((c) => c.row.id),
        },
      });
    }

    // Per role: the identities to deny and the latest moment a credential issued before now could start a session.
    const plan = new Map<
      string,
      { role: RoleRef; identities: Set<string>; latest: number; rows: Set<string> }
    >();
    for (const c of live) {
      if (c.sourceIdentity === null) continue;
      const redeemableUntil =
        c.row.kind === 'saml-assertion'
          ? new Date(c.row.expires_at).getTime()
          : new Date(c.row.issued_at).getTime();
      for (const role of c.roles) {
        if (options.only && targetOf(role) !== targetOf(options.only)) continue;
        const key = targetOf(role);
        const entry = plan.get(key) ?? {
          role,
          identities: new Set(),
          latest: requestedAt.getTime(),
          rows: new Set(),
        };
        entry.identities.add(c.sourceIdentity);
        entry.latest = Math.max(entry.latest, redeemableUntil);
        entry.rows.add(c.row.id);
        plan.set(key, entry);
      }
    }

    const skewMs = this.options.clockSkewSeconds * 1000;
    // What every role needs from the database, read once for all of them: its registration (ARN,
    // MaxSessionDuration) and its account (partition, endpoint).
    const roles = [...plan.values()].map((p) => p.role);
    const accountIds = [...new Set(roles.map((r) => r.account))];
    const accounts = new Map<string, AwsAccount>();
    // Side by side: on offboarding's critical path, a round trip saved is a round trip's latency saved.
    const [registered] = await Promise.all([
      this.accounts.rolesByTarget(roles),
      ...accountIds.map(async (id) => {
        const account = await this.accounts.find(this.store.db, id);
        if (account) accounts.set(id, account);
      }),
    ]);
    const results = await Promise.all(
      [...plan.values()].map(async (p): Promise<RoleRevocation> => {
        const cutoff = new Date(p.latest + skewMs);
        const identities = [...p.identities].sort();
        const role = registered.get(targetOf(p.role));
        const account = accounts.get(p.role.account);
        const base = {
          target: targetOf(p.role),
          roleArn:
            role?.arn ?? `arn:${account?.partition ?? 'aws'}:iam::${p.role.account}:role/${p.role.role}`,
          sourceIdentities: identities,
          cutoff: cutoffText(cutoff),
          policyName: REVOCATION_POLICY_NAME,
        };
        try {
          if (!account)
            throw new Error(
              `AWS account ${p.role.account} is no longer registered; its partition and endpoint are unknown`,
            );
          // A role Ferry no longer knows keeps IAM's longest session, so nothing is forgotten too early.
          const maxSession = role?.maxSessionDuration ?? MAX_SESSION_SECONDS;
          const recorded = await this.record(
            p.role,
            identities,
            cutoff,
            person.userId,
            options.reason,
            maxSession,
          );
          await this.apply(p.role, account, maxSession, recorded);
          audits.push({
            type: 'aws.sessions-revoked',
            outcome: 'success',
            data: {
              userId: person.userId,
              target: base.target,
              roleArn: base.roleArn,
              policyName: REVOCATION_POLICY_NAME,
              cutoff: base.cutoff,
              sourceIdentities: identities,
              reason: options.reason,
            },
          });
          return { ...base, outcome: 'revoked' };
        } catch (err) {
          const error = (err as Error).message;
          audits.push({
            type: 'aws.sessions-revoke-failed',
            outcome: 'failure',
            data: {
              userId: person.userId,
              target: base.target,
              policyName: REVOCATION_POLICY_NAME,
              cutoff: base.cutoff,
              reason: options.reason,
              error,
            },
          });
          return { ...base, outcome: 'failed', error };
        }
      }),
    );

    // A credential is revoked once every role it opened is denied to it (a multi-role SAML assertion
    // stays live while one of its roles is not).
    const done = new Set(results.filter((r) => r.outcome === 'revoked').map((r) => r.target));
    const revocable = live
      .filter((c) => c.sourceIdentity !== null && c.roles.every((r) => done.has(targetOf(r))))
      .map((c) => c.row.id);
    const credentialsRevoked =
      revocable.length > 0 || audits.length > 0 ? await this.settleLedger(person, ctx, audits, revocable) : 0;
    const report = { roles: results, credentialsRevoked, unnarrowable: unnarrowable.length };
    if (results.some((r) => r.outcome === 'failed')) throw new SessionRevocationIncomplete(report);
    return report;
  }

  /**
   * Writes the audit events and the ledger's "revoked" marks together; returns how many rows it marked.
   * On PostgreSQL in one statement (a data-modifying CTE): one round trip, atomic without BEGIN/COMMIT.
   */
  private async settleLedger(
    person: RevocationPerson,
    ctx: AuditContext,
    audits: Array<{ type: string; outcome: 'success' | 'failure'; data: Record<string, unknown> }>,
    revocable: string[],
  ): Promise<number> {
    const rows = audits.map(
      (a) =>
        auditRow(this.clock, {
          type: a.type,
          outcome: a.outcome,
          actor: ctx.actor,
          subject: person.userName,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: a.data,
        }).row,
    );
    const revokedAt = iso(this.clock.now());
    let marked = 0;
    if (this.store.engine === 'postgres' && rows.length > 0 && revocable.length > 0) {
      const updated = await this.store.db
        .with('logged', (db) => db.insertInto('audit_events').values(rows).returning('seq'))
        .updateTable('issued_credentials')
        .set({ revoked_at: revokedAt })
        .where('id', 'in', revocable)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      marked = Number(updated.numUpdatedRows);
    } else {
      marked = await this.store.db.transaction().execute(async (trx) => {
        if (rows.length > 0) await trx.insertInto('audit_events').values(rows).execute();
        if (revocable.length === 0) return 0;
        const updated = await trx
          .updateTable('issued_credentials')
          .set({ revoked_at: revokedAt })
          .where('id', 'in', revocable)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        return Number(updated.numUpdatedRows);
      });
    }
    if (rows.length > 0) auditAppended();
    return marked;
  }

  /** PIM's call: an activation of `role` ended (expired or revoked), so the person's sessions on it end too. */
  revokeRoleSessions(
    person: RevocationPerson,
    role: RoleRef,
    requestedAt: Date,
    options: Omit<RevokeOptions, 'only'>,
  ): Promise<RevocationReport> {
    return this.revokeLiveSessions(person, requestedAt, { ...options, only: role });
  }

  /** Credentials of the person that may still back a session: a SAML assertion lives on as the session it starts. */
  private async liveCredentials(userId: string, now: Date): Promise<LiveCredential[]> {
    const rows = await this.store.db
      .selectFrom('issued_credentials')
      .selectAll()
      .where('user_id', '=', userId)
      .where('kind', 'in', [...REVOCABLE_KINDS])
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', iso(new Date(now.getTime() - MAX_SESSION_SECONDS * 1000)))
      .execute();
    const out: LiveCredential[] = [];
    for (const row of rows) {
      const details = JSON.parse(row.details) as Record<string, unknown>;
      const sessionSeconds =
        row.kind === 'saml-assertion'
          ? typeof details['sessionDuration'] === 'number'
            ? details['sessionDuration']
            : MAX_SESSION_SECONDS
          : 0;
      if (new Date(row.expires_at).getTime() + sessionSeconds * 1000 <= now.getTime()) continue;
      const roles = row.target
        .split(',')
        .map((t) => TARGET.exec(t.trim()))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ account: m[1]!, role: m[2]! }));
      if (roles.length === 0) continue;
      const si = details['sourceIdentity'];
      out.push({ row, roles, sourceIdentity: typeof si === 'string' && si !== '' ? si : null });
    }
    return out;
  }

  /**
   * Writes what the role's policy must say (a later cutoff for the same identity wins) and, in the same
   * transaction, reads the role's entries and the version they make: the version row stays locked
   * (PostgreSQL) until commit, so what is read is every entry up to that version.
   */
  private async record(
    role: RoleRef,
    identities: string[],
    cutoff: Date,
    userId: string,
    reason: string,
    maxSession: number,
  ): Promise<RoleState> {
    const now = iso(this.clock.now());
    const cutoffIso = iso(cutoff);
    return this.store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('aws_session_revocations')
        .values(
          identities.map((sourceIdentity) => ({
            account_id: role.account,
            role_name: role.role,
            source_identity: sourceIdentity,
            user_id: userId,
            cutoff: cutoffIso,
            reason,
            created_at: now,
            updated_at: now,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['account_id', 'role_name', 'source_identity']).doUpdateSet((eb) => ({
            cutoff: eb
              .case()
              .when('aws_session_revocations.cutoff', '<', cutoffIso)
              .then(cutoffIso)
              .else(eb.ref('aws_session_revocations.cutoff'))
              .end(),
            user_id: userId,
            reason,
            updated_at: now,
          })),
        )
        .execute();
      const version = await bumpVersion(trx, role);
      return { version, entries: await this.entries(trx, role, maxSession) };
    });
  }

  /**
   * Renders the role's policy and writes it to IAM, until what was written is the latest version: a
   * writer that rendered an older version re-renders after its put, so the last put to land always
   * carries every entry.
   */
  private async apply(
    role: RoleRef,
    account: AwsAccount,
    maxSession: number,
    first: RoleState,
  ): Promise<void> {
    const clients = this.clientsFor(account);
    // The credentials must be for this account in its partition: a GovCloud role is not reached through
    // a commercial-partition IAM (where a role of the same name could exist and be changed instead).
    const checked = `${account.id} ${account.partition}`;
    if (!this.checkedAccounts.has(checked)) {
      await checkCallerAccount(clients.sts, account.id, account.partition);
      this.checkedAccounts.add(checked);
    }
    let state = first;
    for (let round = 0; round < MAX_APPLY_ROUNDS; round++) {
      if (round > 0) state = await this.current(role, maxSession);
      const doc = revocationPolicy(state.entries);
      if (doc) {
        await clients.iam.send(
          new iamSdk.PutRolePolicyCommand({
            RoleName: role.role,
            PolicyName: REVOCATION_POLICY_NAME,
            PolicyDocument: JSON.stringify(doc),
          }),
        );
      } else {
        try {
          await clients.iam.send(
            new iamSdk.DeleteRolePolicyCommand({ RoleName: role.role, PolicyName: REVOCATION_POLICY_NAME }),
          );
        } catch (err) {
          if (!(err instanceof iamSdk.NoSuchEntityException)) throw err;
        }
      }
      // Settled when nobody recorded a newer version meanwhile: one statement (applied_version never
      // exceeds version, so setting it to the version it equals is idempotent).
      const settled = await this.store.db
        .updateTable('aws_revocation_policies')
        .set({ applied_version: state.version, applied_at: iso(this.clock.now()) })
        .where('account_id', '=', role.account)
        .where('role_name', '=', role.role)
        .where('version', '=', state.version)
        .executeTakeFirst();
      if (Number(settled.numUpdatedRows) > 0) return;
    }
    throw new Error(`the revocations of ${targetOf(role)} kept changing while being written`);
  }

  /**
   * The SDK clients of one account, kept for the life of the revoker: a new client per call meant a
   * new TCP connection (and credential resolution) on offboarding's critical path. Keyed by what the
   * connection is made from, so a re-registered account with another partition or endpoint gets new ones.
   */
  private clientsFor(account: AwsAccount): AccountClients {
    const key = `${account.id} ${account.partition} ${account.endpointUrl ?? ''}`;
    let clients = this.clients.get(key);
    if (!clients) {
      clients = this.connect(account);
      this.clients.set(key, clients);
    }
    return clients;
  }

  /** Closes the SDK clients this revoker opened. */
  close(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }

  /** The role's entries still needed now and the version they make (another writer changed them). */
  private current(role: RoleRef, maxSession: number): Promise<RoleState> {
    return this.store.db.transaction().execute(async (trx) => {
      const head = await trx
        .selectFrom('aws_revocation_policies')
        .select('version')
        .where('account_id', '=', role.account)
        .where('role_name', '=', role.role)
        .executeTakeFirst();
      return { version: Number(head?.version ?? 0), entries: await this.entries(trx, role, maxSession) };
    });
  }

  /** The role's entries still needed now; those whose sessions have all expired are forgotten. */
  private async entries(
    trx: Kysely<Database>,
    role: RoleRef,
    maxSession: number,
  ): Promise<RevokedIdentity[]> {
    const now = this.clock.now();
    const rows = await trx
      .selectFrom('aws_session_revocations')
      .select(['source_identity', 'cutoff'])
      .where('account_id', '=', role.account)
      .where('role_name', '=', role.role)
      .execute();
    const entries: RevokedIdentity[] = [];
    for (const r of rows) {
      const entry = { sourceIdentity: r.source_identity, cutoff: new Date(r.cutoff) };
      if (stillNeeded(entry, now, maxSession)) {
        entries.push(entry);
      } else {
        await trx
          .deleteFrom('aws_session_revocations')
          .where('account_id', '=', role.account)
          .where('role_name', '=', role.role)
          .where('source_identity', '=', r.source_identity)
          .where('cutoff', '=', r.cutoff)
          .execute();
      }
    }
    return entries;
  }
}

/** Counts one more change to the role's revocations; returns the version it makes. */
async function bumpVersion(trx: Kysely<Database>, role: RoleRef): Promise<number> {
  const row = await trx
    .insertInto('aws_revocation_policies')
    .values({
      account_id: role.account,
      role_name: role.role,
      version: 1,
      applied_version: 0,
      applied_at: null,
    })
    .onConflict((oc) =>
      oc.columns(['account_id', 'role_name']).doUpdateSet((eb) => ({
        version: eb('aws_revocation_policies.version', '+', 1),
      })),
    )
    .returning('version')
    .executeTakeFirstOrThrow();
  return Number(row.version);
}

/**
 * The revocations Ferry holds for these identities or people (detections read them to tell activity
 * after a cutoff). Entries leave the table once no session issued before the cutoff can be alive.
 */
export async function revocationsOf(
  db: Kysely<Database>,
  who: { sourceIdentities: string[]; userIds: string[] },
): Promise<
  Array<{ account: string; role: string; sourceIdentity: string; userId: string | null; cutoff: Date }>
> {
  if (who.sourceIdentities.length === 0 && who.userIds.length === 0) return [];
  const rows = await db
    .selectFrom('aws_session_revocations')
    .select(['account_id', 'role_name', 'source_identity', 'user_id', 'cutoff'])
    .where((eb) =>
      eb.or([
        ...(who.sourceIdentities.length > 0 ? [eb('source_identity', 'in', who.sourceIdentities)] : []),
        ...(who.userIds.length > 0 ? [eb('user_id', 'in', who.userIds)] : []),
      ]),
    )
    .execute();
  return rows.map((r) => ({
    account: r.account_id,
    role: r.role_name,
    sourceIdentity: r.source_identity,
    userId: r.user_id,
    cutoff: new Date(r.cutoff),
  }));
}
