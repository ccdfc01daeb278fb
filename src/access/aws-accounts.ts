import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { AuditContext } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { Conflict, InvalidInput, NotFound } from '../errors.js';
import { isUniqueViolation } from '../store/errors.js';
import type { Store } from '../store/open.js';
import type { AwsAccountsTable, AwsRolesTable, Database } from '../store/schema.js';

export type Partition = AwsAccountsTable['partition'];

/** Where each partition's console takes a SAML response (also the SAML:aud trust condition). */
export const SIGNIN_ENDPOINTS: Record<Partition, string> = {
  aws: 'https://signin.aws.amazon.com/saml',
  'aws-us-gov': 'https://signin.amazonaws-us-gov.com/saml',
  'aws-cn': 'https://signin.amazonaws.cn/saml',
};

export interface AwsAccount {
  id: string;
  alias: string;
  partition: Partition;
  samlProviderName: string;
  samlProviderArn: string;
  signinEndpoint: string;
  /** where Ferry (and `ferry aws config` profiles) reach this account's AWS APIs; null = AWS itself */
  endpointUrl: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AwsRole {
  accountId: string;
  name: string;
  path: string;
  arn: string;
  /** seconds: the longest session IAM allows for this role */
  maxSessionDuration: number;
  description: string | null;
}

export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43_200;

const accountFromRow = (r: AwsAccountsTable): AwsAccount => ({
  id: r.id,
  alias: r.alias,
  partition: r.partition,
  samlProviderName: r.saml_provider_name,
  samlProviderArn: `arn:${r.partition}:iam::${r.id}:saml-provider/${r.saml_provider_name}`,
  signinEndpoint: SIGNIN_ENDPOINTS[r.partition],
  endpointUrl: r.endpoint_url ?? null,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const roleFromRow = (r: AwsRolesTable, partition: Partition): AwsRole => ({
  accountId: r.account_id,
  name: r.name,
  path: r.path,
  arn: `arn:${partition}:iam::${r.account_id}:role${r.path}${r.name}`,
  maxSessionDuration: Number(r.max_session_duration),
  description: r.description,
});

/** A role row with its account's columns (prefixed `a_`), as roleQuery answers. */
export type RoleWithAccountRow = AwsRolesTable & {
  a_alias: string;
  a_alias_key: string;
  a_partition: Partition;
  a_saml_provider_name: string;
  a_endpoint_url: string | null;
  a_created_at: string;
  a_updated_at: string;
};

/**
 * The role `name` of the account `accountRef` (its 12 digits or its alias) joined with the account:
 * one statement, also embedded as it is in decide()'s single PostgreSQL read (decide-reads.ts).
 */
export function roleQuery(accountRef: string, name: string): RawBuilder<RoleWithAccountRow> {
  const account = /^\d{12}$/.test(accountRef)
    ? sql`a.id = ${accountRef}`
    : sql`a.alias_key = ${accountRef.toLowerCase()}`;
  return sql<RoleWithAccountRow>`select r.account_id, r.name, r.path, r.max_session_duration, r.description,
      r.created_at, r.updated_at, a.alias as a_alias, a.alias_key as a_alias_key, a.partition as a_partition,
      a.saml_provider_name as a_saml_provider_name, a.endpoint_url as a_endpoint_url,
      a.created_at as a_created_at, a.updated_at as a_updated_at
    from aws_roles as r inner join aws_accounts as a on a.id = r.account_id
    where ${account} and r.name = ${name}`;
}

/** A role row with its account's partition, as rolesOfTargetsQuery answers. */
export type RoleWithPartitionRow = AwsRolesTable & { partition: Partition };

/**
 * The registered roles among `targets` (any statement answering account_id, role_name), each with its
 * account's partition: what rolesByTarget reads, as one statement over targets still in the database
 * (entitlements()' single PostgreSQL read, decide-reads.ts).
 */
export function rolesOfTargetsQuery(
  targets: RawBuilder<{ account_id: string; role_name: string }>,
): RawBuilder<RoleWithPartitionRow> {
  return sql<RoleWithPartitionRow>`select r.*, a.partition
    from aws_roles as r inner join aws_accounts as a on a.id = r.account_id
    where (r.account_id, r.name) in (select t.account_id, t.role_name from (${targets}) as t)`;
}

export function roleAndAccountOf(row: RoleWithAccountRow): { account: AwsAccount; role: AwsRole } {
  const account = accountFromRow({
    id: row.account_id,
    alias: row.a_alias,
    alias_key: row.a_alias_key,
    partition: row.a_partition,
    saml_provider_name: row.a_saml_provider_name,
    endpoint_url: row.a_endpoint_url,
    created_at: row.a_created_at,
    updated_at: row.a_updated_at,
  });
  return { account, role: roleFromRow(row, account.partition) };
}

export interface AccountInput {
  id: string;
  alias: string;
  partition?: Partition;
  samlProviderName?: string;
  /** an AWS endpoint override (the local AWS); null clears it, undefined keeps it */
  endpointUrl?: string | null;
}

export interface RoleInput {
  name: string;
  path?: string;
  maxSessionDuration?: number;
  description?: string | null;
}

function checkAccount(input: AccountInput): void {
  if (!/^\d{12}$/.test(input.id)) throw new InvalidInput('account id must be 12 digits', 'id');
  if (!/^[a-z0-9A-Z][\w.-]{0,62}$/.test(input.alias)) {
    throw new InvalidInput('alias must be 1-63 letters, digits, . _ -', 'alias');
  }
  if (input.partition && !(input.partition in SIGNIN_ENDPOINTS)) {
    throw new InvalidInput('partition must be aws, aws-us-gov or aws-cn', 'partition');
  }
  if (input.samlProviderName !== undefined && !/^[\w.-]{1,128}$/.test(input.samlProviderName)) {
    throw new InvalidInput('samlProviderName must be 1-128 letters, digits, . _ -', 'samlProviderName');
  }
  if (input.endpointUrl) {
    const url = URL.parse(input.endpointUrl);
    if (!url || !/^https?:$/.test(url.protocol) || url.search || url.hash || url.username) {
      throw new InvalidInput(
        'endpointUrl must be an http(s) URL without query, fragment or credentials',
        'endpointUrl',
      );
    }
  }
}

function checkRole(input: RoleInput): void {
  if (!/^[\w+=,.@-]{1,64}$/.test(input.name))
    throw new InvalidInput('role name must match [\\w+=,.@-]{1,64}', 'name');
  if (input.path !== undefined && !/^\/([\x21-\x7e]{0,510}\/)?$/.test(input.path)) {
    throw new InvalidInput('role path must start and end with /', 'path');
  }
  const d = input.maxSessionDuration;
  if (d !== undefined && (!Number.isInteger(d) || d < 3600 || d > MAX_SESSION_SECONDS)) {
    throw new InvalidInput(
      'maxSessionDuration must be 3600..43200 seconds, as IAM allows',
      'maxSessionDuration',
    );
  }
}

/** The AWS accounts registry and each account's roles. */
export class AwsAccounts {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async find(db: Kysely<Database>, ref: string): Promise<AwsAccount | null> {
    const q = db.selectFrom('aws_accounts').selectAll();
    const row = /^\d{12}$/.test(ref)
      ? await q.where('id', '=', ref).executeTakeFirst()
      : await q.where('alias_key', '=', ref.toLowerCase()).executeTakeFirst();
    return row ? accountFromRow(row) : null;
  }

  async get(ref: string): Promise<AwsAccount> {
    const account = await this.find(this.store.db, ref);
    if (!account) throw new NotFound('AWS account', ref);
    return account;
  }

  async list(): Promise<AwsAccount[]> {
    const rows = await this.store.db.selectFrom('aws_accounts').selectAll().orderBy('alias_key').execute();
    return rows.map(accountFromRow);
  }

  /** Creates the account, or updates alias/partition/provider name when it exists. */
  async upsert(ctx: AuditContext, input: AccountInput): Promise<{ account: AwsAccount; changed: boolean }> {
    checkAccount(input);
    const now = iso(this.clock.now());
    try {
      return await this.store.db.transaction().execute(async (trx) => {
        const existing = await trx
          .selectFrom('aws_accounts')
          .selectAll()
          .where('id', '=', input.id)
          .executeTakeFirst();
        const values = {
          alias: input.alias,
          alias_key: input.alias.toLowerCase(),
          partition: input.partition ?? existing?.partition ?? 'aws',
          saml_provider_name: input.samlProviderName ?? existing?.saml_provider_name ?? 'Ferry',
          endpoint_url:
            input.endpointUrl === undefined
              ? (existing?.endpoint_url ?? null)
              : input.endpointUrl?.replace(/\/+$/, '') || null,
        };
        if (
          existing &&
          existing.alias === values.alias &&
          existing.partition === values.partition &&
          existing.saml_provider_name === values.saml_provider_name &&
          (existing.endpoint_url ?? null) === values.endpoint_url
        ) {
          return { account: accountFromRow(existing), changed: false };
        }
        if (existing) {
          await trx
            .updateTable('aws_accounts')
            .set({ ...values, updated_at: now })
            .where('id', '=', input.id)
            .execute();
        } else {
          await trx
            .insertInto('aws_accounts')
            .values({ id: input.id, ...values, created_at: now, updated_at: now })
            .execute();
        }
        await appendAudit(trx, this.store.engine, this.clock, {
          type: existing ? 'aws-account.updated' : 'aws-account.added',
          outcome: 'success',
          actor: ctx.actor,
          subject: input.id,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: {
            alias: values.alias,
            partition: values.partition,
            samlProviderName: values.saml_provider_name,
            endpointUrl: values.endpoint_url,
          },
        });
        const row = await trx
          .selectFrom('aws_accounts')
          .selectAll()
          .where('id', '=', input.id)
          .executeTakeFirstOrThrow();
        return { account: accountFromRow(row), changed: true };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`another account already has the alias ${input.alias}`);
      throw err;
    }
  }

  async remove(ctx: AuditContext, ref: string): Promise<void> {
    const account = await this.get(ref);
    await this.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('assignments').where('account_id', '=', account.id).execute();
      await trx.deleteFrom('aws_roles').where('account_id', '=', account.id).execute();
      await trx.deleteFrom('aws_accounts').where('id', '=', account.id).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'aws-account.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: account.id,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { alias: account.alias },
      });
    });
  }

  async roles(accountRef: string): Promise<AwsRole[]> {
    const account = await this.get(accountRef);
    const rows = await this.store.db
      .selectFrom('aws_roles')
      .selectAll()
      .where('account_id', '=', account.id)
      .orderBy('name')
      .execute();
    return rows.map((r) => roleFromRow(r, account.partition));
  }

  /**
   * A role and its account in one query (asked by every decide() for an AWS role: on PostgreSQL the
   * account-then-role pair was two round trips one after the other, issue 16). Only a miss reads the
   * account again, to say which of the two is not there.
   */
  async role(accountRef: string, name: string): Promise<{ account: AwsAccount; role: AwsRole }> {
    const { rows } = await roleQuery(accountRef, name).execute(this.store.db);
    const row = rows[0];
    if (!row) {
      const account = await this.get(accountRef);
      throw new NotFound('role', `aws:${account.id}/${name}`);
    }
    return roleAndAccountOf(row);
  }

  /** Several roles in one query (for entitlements), keyed `aws:<account>/<role>`. */
  async rolesByTarget(targets: Array<{ account: string; role: string }>): Promise<Map<string, AwsRole>> {
    const out = new Map<string, AwsRole>();
    if (targets.length === 0) return out;
    const rows = await this.store.db
      .selectFrom('aws_roles')
      .innerJoin('aws_accounts', 'aws_accounts.id', 'aws_roles.account_id')
      .selectAll('aws_roles')
      .select('aws_accounts.partition')
      .where((eb) =>
        eb.or(
          targets.map((t) =>
            eb.and([eb('aws_roles.account_id', '=', t.account), eb('aws_roles.name', '=', t.role)]),
          ),
        ),
      )
      .execute();
    for (const r of rows) out.set(`aws:${r.account_id}/${r.name}`, roleFromRow(r, r.partition));
    return out;
  }

  /** Creates the role or updates its path, MaxSessionDuration and description. */
  async upsertRole(
    ctx: AuditContext,
    accountRef: string,
    input: RoleInput,
  ): Promise<{ role: AwsRole; changed: boolean }> {
    checkRole(input);
    const account = await this.get(accountRef);
    const now = iso(this.clock.now());
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('aws_roles')
        .selectAll()
        .where('account_id', '=', account.id)
        .where('name', '=', input.name)
        .executeTakeFirst();
      const values = {
        path: input.path ?? existing?.path ?? '/',
        max_session_duration: input.maxSessionDuration ?? existing?.max_session_duration ?? 3600,
        description: input.description !== undefined ? input.description : (existing?.description ?? null),
      };
      if (
        existing &&
        existing.path === values.path &&
        Number(existing.max_session_duration) === values.max_session_duration &&
        existing.description === values.description
      ) {
        return { role: roleFromRow(existing, account.partition), changed: false };
      }
      if (existing) {
        await trx
          .updateTable('aws_roles')
          .set({ ...values, updated_at: now })
          .where('account_id', '=', account.id)
          .where('name', '=', input.name)
          .execute();
      } else {
        await trx
          .insertInto('aws_roles')
          .values({ account_id: account.id, name: input.name, ...values, created_at: now, updated_at: now })
          .execute();
      }
      await appendAudit(trx, this.store.engine, this.clock, {
        type: existing ? 'aws-role.updated' : 'aws-role.added',
        outcome: 'success',
        actor: ctx.actor,
        subject: `aws:${account.id}/${input.name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { maxSessionDuration: values.max_session_duration, path: values.path },
      });
      const row = await trx
        .selectFrom('aws_roles')
        .selectAll()
        .where('account_id', '=', account.id)
        .where('name', '=', input.name)
        .executeTakeFirstOrThrow();
      return { role: roleFromRow(row, account.partition), changed: true };
    });
  }

  async removeRole(ctx: AuditContext, accountRef: string, name: string): Promise<void> {
    const { account } = await this.role(accountRef, name);
    await this.store.db.transaction().execute(async (trx) => {
      await trx
        .deleteFrom('assignments')
        .where('account_id', '=', account.id)
        .where('role_name', '=', name)
        .execute();
      await trx
        .deleteFrom('aws_roles')
        .where('account_id', '=', account.id)
        .where('name', '=', name)
        .execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'aws-role.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `aws:${account.id}/${name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
      });
    });
  }
}
