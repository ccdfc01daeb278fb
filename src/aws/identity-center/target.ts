import type { AuditContext } from '../../audit/actor.js';
import { actorName } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { InvalidInput, NotFound } from '../../errors.js';
import type { MasterKey } from '../../keys/master-key.js';
import type { Store } from '../../store/open.js';

const TARGET_ID = 'default';
const sealContext = (id: string) => `identity-center-target:${id}`;

export interface TargetView {
  endpoint: string;
  createdAt: string;
  updatedAt: string;
  updatedBy: string;
}

/** Where Ferry pushes: the SCIM endpoint and access token IAM Identity Center shows once. */
export interface PushTarget {
  endpoint: string;
  token: string;
}

/** The Identity Center SCIM endpoint and its bearer token, sealed with the master key at rest. */
export class IdentityCenterTargets {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly masterKey: MasterKey,
  ) {}

  async set(ctx: AuditContext, input: PushTarget): Promise<TargetView> {
    const endpoint = checkEndpoint(input.endpoint);
    const token = input.token.trim();
    if (token.length < 8 || /\s/.test(token))
      throw new InvalidInput('token must be the access token Identity Center showed', 'token');
    const now = iso(this.clock.now());
    const sealed = this.masterKey.seal(token, sealContext(TARGET_ID));
    await this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('identity_center_targets')
        .select(['id', 'endpoint'])
        .where('id', '=', TARGET_ID)
        .executeTakeFirst();
      // Another Identity Center instance knows none of the remote ids pushed so far: start over.
      const otherInstance = existing !== undefined && existing.endpoint !== endpoint;
      if (otherInstance) {
        await trx.deleteFrom('identity_center_members').execute();
        await trx.deleteFrom('identity_center_groups').execute();
        await trx.deleteFrom('identity_center_users').execute();
      }
      if (existing) {
        await trx
          .updateTable('identity_center_targets')
          .set({ endpoint, token_sealed: sealed, updated_at: now, updated_by: actorName(ctx.actor) })
          .where('id', '=', TARGET_ID)
          .execute();
      } else {
        await trx
          .insertInto('identity_center_targets')
          .values({
            id: TARGET_ID,
            endpoint,
            token_sealed: sealed,
            created_at: now,
            updated_at: now,
            updated_by: actorName(ctx.actor),
          })
          .execute();
      }
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'identity-center.target-set',
        outcome: 'success',
        actor: ctx.actor,
        subject: endpoint,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { replaced: existing !== undefined, pushStateCleared: otherInstance },
      });
    });
    return this.view();
  }

  async view(): Promise<TargetView> {
    const row = await this.store.db
      .selectFrom('identity_center_targets')
      .selectAll()
      .where('id', '=', TARGET_ID)
      .executeTakeFirst();
    if (!row) throw new NotFound('identity center target', TARGET_ID);
    return {
      endpoint: row.endpoint,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      updatedBy: row.updated_by,
    };
  }

  /** The endpoint and unsealed token, or null when no push is configured. */
  async current(): Promise<PushTarget | null> {
    const row = await this.store.db
      .selectFrom('identity_center_targets')
      .selectAll()
      .where('id', '=', TARGET_ID)
      .executeTakeFirst();
    if (!row) return null;
    return { endpoint: row.endpoint, token: this.masterKey.unseal(row.token_sealed, sealContext(TARGET_ID)) };
  }

  async remove(ctx: AuditContext): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      const row = await trx
        .deleteFrom('identity_center_targets')
        .where('id', '=', TARGET_ID)
        .executeTakeFirst();
      if (Number(row.numDeletedRows) === 0) throw new NotFound('identity center target', TARGET_ID);
      // The next target may be another instance: forget remote ids (a later push adopts by name).
      await trx.deleteFrom('identity_center_members').execute();
      await trx.deleteFrom('identity_center_groups').execute();
      await trx.deleteFrom('identity_center_users').execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'identity-center.target-removed',
        outcome: 'success',
        actor: ctx.actor,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {},
      });
    });
  }
}

function checkEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new InvalidInput('endpoint must be the SCIM endpoint URL Identity Center shows', 'endpoint');
  }
  // A bearer token must not travel in clear text, except to a loopback test server.
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new InvalidInput('endpoint must be https (http only on loopback)', 'endpoint');
  if (url.search || url.hash || url.username)
    throw new InvalidInput('endpoint must be a plain URL', 'endpoint');
  return url.toString().replace(/\/+$/, '');
}
