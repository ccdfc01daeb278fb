import { sql } from 'kysely';
import type { AwsAccounts } from '../../access/aws-accounts.js';
import { eventFromRow } from '../../audit/ledger.js';
import { REVOCATION_POLICY_NAME } from '../../aws/revocation-policy.js';
import { revocationsOf } from '../../aws/session-revocation.js';
import { type Clock, iso } from '../../clock.js';
import type { Store } from '../../store/open.js';
import type { ActivityObserver, AttributedRecord } from '../record.js';
import { type ManagedEstate, observeRecord } from './cloudtrail-rules.js';
import { observeAuditEvent } from './ferry-rules.js';
import type { Observation } from './finding.js';
import type { Detections } from './service.js';

export interface EstateDeps {
  store: Store;
  accounts: AwsAccounts;
  /** Ferry's public URL: its OpenID issuer, as IAM names the OIDC provider */
  publicUrl: () => string;
}

/** What Ferry manages, read once per batch: its roles, its identity providers, and the batch's revocations. */
export async function loadEstate(
  deps: EstateDeps,
  detections: Detections,
  batch: readonly AttributedRecord[],
): Promise<ManagedEstate> {
  const accounts = await deps.accounts.list();
  const managedRoleArns = new Set<string>();
  for (const a of accounts) for (const r of await deps.accounts.roles(a.id)) managedRoleArns.add(r.arn);
  const sourceIdentities = [
    ...new Set(batch.map((r) => r.sourceIdentity).filter((s): s is string => s !== null)),
  ];
  const userIds = [...new Set(batch.map((r) => r.attribution.userId).filter((s): s is string => s !== null))];
  return {
    managedRoleArns,
    samlProviderArns: new Set(accounts.map((a) => a.samlProviderArn)),
    oidcProviderPaths: new Set([
      deps
        .publicUrl()
        .replace(/^https?:\/\//, '')
        .replace(/\/$/, ''),
    ]),
    denyPolicyName: REVOCATION_POLICY_NAME,
    ferryPrincipals: detections.settings.ferryPrincipals,
    revocations: await revocationsOf(deps.store.db, { sourceIdentities, userIds }),
  };
}

/** The CloudTrail detections as ingestion's observer: each stored batch is looked at once. */
export function detectionObserver(deps: EstateDeps, detections: Detections): ActivityObserver {
  return async (batch) => {
    if (batch.length === 0) return;
    const estate = await loadEstate(deps, detections, batch);
    const observations: Observation[] = [];
    for (const record of batch) observations.push(...observeRecord(record, estate));
    await detections.observe(observations);
  };
}

const CURSOR = 'ferry-audit';

/**
 * The Ferry-side detections read the audit trail in tree order (leaf_index: sealed, gap-free and final),
 * from a stored position that advances in the transaction that raises the alerts: each event is looked
 * at once across instances (a second instance's conditional update finds the position moved and backs off).
 * A fresh install starts at the current end: history raises nothing.
 */
export async function watchAuditOnce(
  store: Store,
  clock: Clock,
  detections: Detections,
  limit = 500,
): Promise<number> {
  const { db } = store;
  const cursor = await db
    .selectFrom('detection_cursors')
    .select('position')
    .where('name', '=', CURSOR)
    .executeTakeFirst();
  if (!cursor) {
    const end = await db
      .selectFrom('audit_events')
      .select(sql<number | null>`max(leaf_index)`.as('top'))
      .executeTakeFirst();
    await db
      .insertInto('detection_cursors')
      .values({ name: CURSOR, position: Number(end?.top ?? -1), updated_at: iso(clock.now()) })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    return 0;
  }
  const from = Number(cursor.position);
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('leaf_index', '>', from)
    .orderBy('leaf_index')
    .limit(limit)
    .execute();
  if (rows.length === 0) return 0;
  const to = Number(rows.at(-1)!.leaf_index);
  const observations = rows.flatMap((r) => observeAuditEvent(eventFromRow(r), detections.settings));
  await db.transaction().execute(async (trx) => {
    const moved = await trx
      .updateTable('detection_cursors')
      .set({ position: to, updated_at: iso(clock.now()) })
      .where('name', '=', CURSOR)
      .where('position', '=', from)
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) !== 1) return; // another instance read these
    await detections.observeIn(trx, observations);
  });
  return rows.length;
}
