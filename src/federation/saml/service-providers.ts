import { randomUUID, X509Certificate } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AppAssignments } from '../../access/app-assignments.js';
import type { PrincipalRef } from '../../access/assignments.js';
import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { AUTHN_STRENGTHS, type AuthnStrength } from '../../authn/amr.js';
import { type Clock, iso } from '../../clock.js';
import { Conflict, InvalidInput, NotFound } from '../../errors.js';
import { isUniqueViolation } from '../../store/errors.js';
import type { Store } from '../../store/open.js';
import type { Database, ServiceProvidersTable } from '../../store/schema.js';
import { ReplayedAuthnRequest, UnknownServiceProvider, UnregisteredAcs } from './request-errors.js';
import {
  type AcsEndpoint,
  acsUrlProblem,
  BINDING_URNS,
  bindingFromUrn,
  certificateToPem,
  normalizeAcs,
  parseSpMetadata,
  type SamlBinding,
  type SpMetadata,
} from './sp-metadata.js';

export { UnknownServiceProvider, UnregisteredAcs } from './request-errors.js';

export const NAME_ID_FORMATS = {
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
} as const;
export type NameIdFormat = (typeof NAME_ID_FORMATS)[keyof typeof NAME_ID_FORMATS];

/** The user fields an attribute map may send; free attributes are `attributes.<key>`. */
export const USER_FIELDS = [
  'userName',
  'email',
  'displayName',
  'givenName',
  'familyName',
  'id',
  'externalId',
  'groups',
] as const;
export type UserField = (typeof USER_FIELDS)[number];
/** A user field, or `attributes.<key>` for a free attribute (department, costCenter, …). */
export type AttributeSource = UserField | `attributes.${string}`;
/** `{ "<SAML attribute Name>": "<user field>" }` */
export type AttributeMap = Record<string, AttributeSource>;

export interface ServiceProvider {
  id: string;
  entityId: string;
  name: string;
  /** exactly one has isDefault */
  acsUrls: AcsEndpoint[];
  nameIdFormat: NameIdFormat;
  attributeMap: AttributeMap;
  /** PEM; AuthnRequest signatures are verified against these */
  signingCertificates: string[];
  requireSignedRequests: boolean;
  /** the weakest sign-in an assertion to this SP may state, whatever the request asks */
  minimumAuthnContext: AuthnStrength;
  /** sign status-only responses (NoPassive, NoAuthnContext); SPs that want signed responses need it */
  signStatusResponses: boolean;
  /** reachable by every active user while no group is assigned to `app:<entityId>` */
  openToAll: boolean;
  createdAt: string;
  updatedAt: string;
}

/** An ACS endpoint as an admin gives it: a bare URL means HTTP-POST with the next free index. */
export type AcsInput = string | { url: string; binding?: SamlBinding; index?: number; isDefault?: boolean };

export interface ServiceProviderInput {
  name: string;
  /** SP metadata; explicit fields below override what it says */
  metadataXml?: string;
  entityId?: string;
  acsUrls?: AcsInput[];
  /** a NameID format URI, or its short name (emailAddress, persistent, transient, unspecified) */
  nameIdFormat?: string;
  attributeMap?: Record<string, string>;
  signingCertificates?: string[];
  requireSignedRequests?: boolean;
  /** single-factor (default), mfa or phishing-resistant */
  minimumAuthnContext?: string;
  /** default true */
  signStatusResponses?: boolean;
  /** default false: a new SP is reachable only by the groups assigned to it */
  openToAll?: boolean;
}

export type ServiceProviderChanges = Partial<ServiceProviderInput>;

/** Which registered ACS endpoint an assertion goes to. */
export interface ResolvedAcs {
  url: string;
  binding: SamlBinding;
}

const MAX_ATTRIBUTES = 100;

export function serviceProviderFromRow(row: ServiceProvidersTable): ServiceProvider {
  return {
    id: row.id,
    entityId: row.entity_id,
    name: row.name,
    acsUrls: JSON.parse(row.acs_urls) as AcsEndpoint[],
    nameIdFormat: row.name_id_format as NameIdFormat,
    attributeMap: JSON.parse(row.attribute_map) as AttributeMap,
    signingCertificates: JSON.parse(row.signing_certificates) as string[],
    requireSignedRequests: Number(row.require_signed_requests) === 1,
    minimumAuthnContext: (row.minimum_authn_context ?? 'single-factor') as AuthnStrength,
    signStatusResponses: Number(row.sign_status_responses ?? 1) === 1,
    openToAll: Number(row.open_to_all ?? 0) === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Picks the ACS endpoint for a response: the SP's default when the request names none (its first
 * HTTP-POST endpoint when the default has another binding, since Ferry answers over HTTP-POST), else the
 * registered endpoint whose URL (exact string comparison: no prefix, case or slash folding) and/or
 * index the request names. Anything else throws UnregisteredAcs with the received and registered values.
 */
export function resolveAcs(
  sp: ServiceProvider,
  requestedAcsUrl?: string,
  requestedIndex?: number,
): ResolvedAcs {
  const registered = sp.acsUrls;
  let match: AcsEndpoint | undefined;
  if (requestedAcsUrl === undefined && requestedIndex === undefined) {
    // The default for the binding Ferry answers with (SAML Metadata §2.2.3 "absent other requirements").
    const isDefault = registered.find((e) => e.isDefault) ?? registered[0];
    match =
      isDefault?.binding === 'HTTP-POST'
        ? isDefault
        : (registered.find((e) => e.binding === 'HTTP-POST') ?? isDefault);
    if (!match) throw new UnregisteredAcs(sp.entityId, '(the default endpoint)', []);
  } else if (requestedAcsUrl !== undefined) {
    match = registered.find(
      (e) => e.url === requestedAcsUrl && (requestedIndex === undefined || e.index === requestedIndex),
    );
    if (!match) {
      const received =
        requestedIndex === undefined ? requestedAcsUrl : `${requestedAcsUrl} (index ${requestedIndex})`;
      throw new UnregisteredAcs(
        sp.entityId,
        received,
        registered.map((e) => (requestedIndex === undefined ? e.url : `${e.url} (index ${e.index})`)),
      );
    }
  } else {
    match = registered.find((e) => e.index === requestedIndex);
    if (!match) {
      throw new UnregisteredAcs(
        sp.entityId,
        `AssertionConsumerServiceIndex ${requestedIndex}`,
        registered.map((e) => `index ${e.index}: ${e.url}`),
      );
    }
  }
  return { url: match.url, binding: match.binding };
}

async function findRow(db: Kysely<Database>, ref: string): Promise<ServiceProvidersTable | undefined> {
  return db
    .selectFrom('service_providers')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', ref), eb('entity_id', '=', ref)]))
    .executeTakeFirst();
}

/** The registry of SAML service providers Ferry signs users in to (IAM Identity Center, any SAML app). */
export class ServiceProviders {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** who may reach `app:<entityId>`; without it an SP cannot be assigned to groups */
    private readonly appAssignments?: AppAssignments,
  ) {}

  /** The groups assigned to the SP (`app:<entityId>`): only their members may sign in to it. */
  async groupsOf(ref: string): Promise<string[]> {
    const sp = await this.get(ref);
    return ((await this.appAssignments?.groupsOf(sp.entityId)) ?? []).map((g) => g.name);
  }

  /** Makes exactly these groups the SP's assignments (empty: nobody, unless it is open to all); audited. */
  async setGroups(ctx: AuditContext, ref: string, groups: PrincipalRef[]): Promise<string[]> {
    const assignments = this.appAssignments;
    if (!assignments) throw new InvalidInput('app assignments are not available here', 'groups');
    const sp = await this.get(ref);
    await this.store.db.transaction().execute((trx) => assignments.replace(trx, ctx, sp.entityId, groups));
    return this.groupsOf(sp.id);
  }

  async add(ctx: AuditContext, input: ServiceProviderInput): Promise<ServiceProvider> {
    const metadata = input.metadataXml !== undefined ? parseSpMetadata(input.metadataXml) : undefined;
    const name = checkName(input.name);
    const entityId = checkEntityId(input.entityId ?? metadata?.entityId);
    if (metadata && input.entityId !== undefined && input.entityId.trim() !== metadata.entityId) {
      throw new InvalidInput(
        `entityId "${input.entityId.trim()}" differs from the metadata's entityID "${metadata.entityId}"`,
        'entityId',
      );
    }
    const acsUrls =
      input.acsUrls !== undefined
        ? checkAcsList(input.acsUrls)
        : metadata
          ? metadata.acsUrls
          : checkAcsList([]);
    const signingCertificates =
      input.signingCertificates !== undefined
        ? checkCertificates(input.signingCertificates)
        : (metadata?.signingCertificates ?? []);
    const nameIdFormat =
      input.nameIdFormat !== undefined ? checkNameIdFormat(input.nameIdFormat) : formatFromMetadata(metadata);
    const attributeMap = checkAttributeMap(input.attributeMap ?? {});
    const requireSignedRequests = input.requireSignedRequests ?? metadata?.authnRequestsSigned ?? false;
    const minimumAuthnContext = checkMinimumAuthnContext(input.minimumAuthnContext ?? 'single-factor');
    const signStatusResponses = input.signStatusResponses ?? true;
    const openToAll = input.openToAll ?? false;
    checkSigningConsistency(requireSignedRequests, signingCertificates);

    const id = randomUUID();
    const now = iso(this.clock.now());
    const { db, engine } = this.store;
    try {
      await db.transaction().execute(async (trx) => {
        const existing = await trx
          .selectFrom('service_providers')
          .select('name')
          .where('entity_id', '=', entityId)
          .executeTakeFirst();
        if (existing) throw duplicate(entityId, existing.name);
        await trx
          .insertInto('service_providers')
          .values({
            id,
            entity_id: entityId,
            name,
            acs_urls: JSON.stringify(acsUrls),
            name_id_format: nameIdFormat,
            attribute_map: JSON.stringify(attributeMap),
            signing_certificates: JSON.stringify(signingCertificates),
            require_signed_requests: requireSignedRequests ? 1 : 0,
            minimum_authn_context: minimumAuthnContext,
            sign_status_responses: signStatusResponses ? 1 : 0,
            open_to_all: openToAll ? 1 : 0,
            created_at: now,
            updated_at: now,
          })
          .execute();
        await appendAudit(trx, engine, this.clock, {
          type: 'service-provider.added',
          outcome: 'success',
          actor: ctx.actor,
          subject: entityId,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: {
            serviceProviderId: id,
            name,
            source: metadata ? 'metadata' : 'fields',
            acsUrls: acsUrls.map((a) => a.url),
            nameIdFormat,
            attributeMap,
            signingCertificates: signingCertificates.map(fingerprint),
            requireSignedRequests,
            minimumAuthnContext,
            signStatusResponses,
            openToAll,
          },
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate(entityId);
      throw err;
    }
    return this.get(id);
  }

  /**
   * Changes a registration. `metadataXml` re-imports entity id, ACS endpoints and certificates and
   * keeps name, NameID format and attribute map unless given; requiring signed requests is never
   * switched off by a re-import (only by an explicit `requireSignedRequests: false`). Returns the SP
   * unchanged, and audits nothing, when nothing differs.
   */
  async update(ctx: AuditContext, ref: string, changes: ServiceProviderChanges): Promise<ServiceProvider> {
    const metadata = changes.metadataXml !== undefined ? parseSpMetadata(changes.metadataXml) : undefined;
    const { db, engine } = this.store;
    let id = '';
    try {
      await db.transaction().execute(async (trx) => {
        const row = await findRow(trx, ref);
        if (!row) throw new NotFound('service provider', ref);
        id = row.id;
        const before = serviceProviderFromRow(row);
        if (metadata && changes.entityId !== undefined && changes.entityId.trim() !== metadata.entityId) {
          throw new InvalidInput(
            `entityId "${changes.entityId.trim()}" differs from the metadata's entityID "${metadata.entityId}"`,
            'entityId',
          );
        }
        const after: ServiceProvider = {
          ...before,
          name: changes.name !== undefined ? checkName(changes.name) : before.name,
          entityId:
            changes.entityId !== undefined
              ? checkEntityId(changes.entityId)
              : metadata
                ? metadata.entityId
                : before.entityId,
          acsUrls:
            changes.acsUrls !== undefined
              ? checkAcsList(changes.acsUrls)
              : metadata
                ? metadata.acsUrls
                : before.acsUrls,
          signingCertificates:
            changes.signingCertificates !== undefined
              ? checkCertificates(changes.signingCertificates)
              : metadata
                ? metadata.signingCertificates
                : before.signingCertificates,
          nameIdFormat:
            changes.nameIdFormat !== undefined
              ? checkNameIdFormat(changes.nameIdFormat)
              : before.nameIdFormat,
          attributeMap:
            changes.attributeMap !== undefined
              ? checkAttributeMap(changes.attributeMap)
              : before.attributeMap,
          requireSignedRequests:
            changes.requireSignedRequests ??
            (before.requireSignedRequests || (metadata?.authnRequestsSigned ?? false)),
          minimumAuthnContext:
            changes.minimumAuthnContext !== undefined
              ? checkMinimumAuthnContext(changes.minimumAuthnContext)
              : before.minimumAuthnContext,
          signStatusResponses: changes.signStatusResponses ?? before.signStatusResponses,
          openToAll: changes.openToAll ?? before.openToAll,
        };
        checkSigningConsistency(after.requireSignedRequests, after.signingCertificates);
        const changed = changedFields(before, after);
        if (changed.length === 0) return;
        if (after.entityId !== before.entityId) {
          const taken = await trx
            .selectFrom('service_providers')
            .select('name')
            .where('entity_id', '=', after.entityId)
            .executeTakeFirst();
          if (taken) throw duplicate(after.entityId, taken.name);
        }
        await trx
          .updateTable('service_providers')
          .set({
            entity_id: after.entityId,
            name: after.name,
            acs_urls: JSON.stringify(after.acsUrls),
            name_id_format: after.nameIdFormat,
            attribute_map: JSON.stringify(after.attributeMap),
            signing_certificates: JSON.stringify(after.signingCertificates),
            require_signed_requests: after.requireSignedRequests ? 1 : 0,
            minimum_authn_context: after.minimumAuthnContext,
            sign_status_responses: after.signStatusResponses ? 1 : 0,
            open_to_all: after.openToAll ? 1 : 0,
            updated_at: iso(this.clock.now()),
          })
          .where('id', '=', row.id)
          .execute();
        await appendAudit(trx, engine, this.clock, {
          type: 'service-provider.updated',
          outcome: 'success',
          actor: ctx.actor,
          subject: after.entityId,
          ip: ctx.ip,
          requestId: ctx.requestId,
          data: {
            serviceProviderId: row.id,
            source: metadata ? 'metadata' : 'fields',
            changed,
            ...(after.entityId !== before.entityId ? { previousEntityId: before.entityId } : {}),
            acsUrls: after.acsUrls.map((a) => a.url),
            signingCertificates: after.signingCertificates.map(fingerprint),
            requireSignedRequests: after.requireSignedRequests,
            minimumAuthnContext: after.minimumAuthnContext,
            signStatusResponses: after.signStatusResponses,
            openToAll: after.openToAll,
          },
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate(changes.entityId ?? metadata?.entityId ?? ref);
      throw err;
    }
    return this.get(id);
  }

  /** By id or by entity id. */
  async get(ref: string): Promise<ServiceProvider> {
    const row = await findRow(this.store.db, ref);
    if (!row) throw new NotFound('service provider', ref);
    return serviceProviderFromRow(row);
  }

  async list(): Promise<ServiceProvider[]> {
    const rows = await this.store.db
      .selectFrom('service_providers')
      .selectAll()
      .orderBy('name')
      .orderBy('entity_id')
      .execute();
    return rows.map(serviceProviderFromRow);
  }

  async remove(ctx: AuditContext, ref: string): Promise<void> {
    const { db, engine } = this.store;
    await db.transaction().execute(async (trx) => {
      const row = await findRow(trx, ref);
      if (!row) throw new NotFound('service provider', ref);
      await trx.deleteFrom('service_providers').where('id', '=', row.id).execute();
      await this.appAssignments?.removeAll(trx, row.entity_id);
      await appendAudit(trx, engine, this.clock, {
        type: 'service-provider.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: row.entity_id,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { serviceProviderId: row.id, name: row.name },
      });
    });
  }

  /**
   * The SP an AuthnRequest's Issuer names, by exact entity id. Throws UnknownServiceProvider carrying
   * the received value and every registered entity id, for the error page.
   */
  async findByEntityId(entityId: string): Promise<ServiceProvider> {
    const row = await this.store.db
      .selectFrom('service_providers')
      .selectAll()
      .where('entity_id', '=', entityId)
      .executeTakeFirst();
    if (row) return serviceProviderFromRow(row);
    const all = await this.store.db
      .selectFrom('service_providers')
      .select('entity_id')
      .orderBy('entity_id')
      .execute();
    throw new UnknownServiceProvider(
      entityId,
      all.map((r) => r.entity_id),
    );
  }

  /** For decide(): whether `app:<entityId>` is open to all while no group is assigned (undefined: no such SP). */
  async openToAll(entityId: string): Promise<boolean | undefined> {
    const row = await this.store.db
      .selectFrom('service_providers')
      .select('open_to_all')
      .where('entity_id', '=', entityId)
      .executeTakeFirst();
    return row ? Number(row.open_to_all) === 1 : undefined;
  }

  resolveAcs(sp: ServiceProvider, requestedAcsUrl?: string, requestedIndex?: number): ResolvedAcs {
    return resolveAcs(sp, requestedAcsUrl, requestedIndex);
  }

  /**
   * Remembers an AuthnRequest ID until `expiresAt` (when its IssueInstant would be refused anyway) and
   * throws ReplayedAuthnRequest when the SP already used it. The primary key decides, in the database,
   * so two instances (or two requests at once) cannot both accept the same ID. Expired IDs are pruned
   * here, a few at a time.
   */
  async rememberRequest(issuer: string, requestId: string, expiresAt: Date): Promise<void> {
    const { db } = this.store;
    const now = iso(this.clock.now());
    try {
      await db
        .insertInto('saml_request_ids')
        .values({ issuer, request_id: requestId, expires_at: iso(expiresAt) })
        .execute();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const seen = await db
        .selectFrom('saml_request_ids')
        .select('expires_at')
        .where('issuer', '=', issuer)
        .where('request_id', '=', requestId)
        .executeTakeFirst();
      // A leftover from long ago (not pruned yet) is no replay: take it over, once.
      if (seen && seen.expires_at < now) {
        const taken = await db
          .updateTable('saml_request_ids')
          .set({ expires_at: iso(expiresAt) })
          .where('issuer', '=', issuer)
          .where('request_id', '=', requestId)
          .where('expires_at', '=', seen.expires_at)
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) === 1) return;
      }
      throw new ReplayedAuthnRequest(issuer, requestId);
    }
    const stale = await db
      .selectFrom('saml_request_ids')
      .select(['issuer', 'request_id'])
      .where('expires_at', '<', now)
      .limit(20)
      .execute();
    for (const r of stale)
      await db
        .deleteFrom('saml_request_ids')
        .where('issuer', '=', r.issuer)
        .where('request_id', '=', r.request_id)
        .where('expires_at', '<', now)
        .execute();
  }
}

function duplicate(entityId: string, existingName?: string): Conflict {
  return new Conflict(
    `a service provider with entity id ${entityId} is already registered${existingName ? ` (as "${existingName}")` : ''}`,
  );
}

function checkName(name: unknown): string {
  const n = typeof name === 'string' ? name.trim() : '';
  if (n.length === 0 || n.length > 200) throw new InvalidInput('name must be 1-200 characters', 'name');
  return n;
}

function checkEntityId(entityId: unknown): string {
  if (entityId === undefined) {
    throw new InvalidInput('an entity id is required (or SP metadata that names one)', 'entityId');
  }
  const e = typeof entityId === 'string' ? entityId.trim() : '';
  if (e.length === 0 || e.length > 1024)
    throw new InvalidInput('entityId must be 1-1024 characters', 'entityId');
  // SAML Core §8.3.6: an entity identifier is a URI of at most 1024 characters.
  if (/[\s\p{Cc}]/u.test(e))
    throw new InvalidInput('entityId must not contain spaces or control characters', 'entityId');
  return e;
}

function checkAcsList(list: AcsInput[]): AcsEndpoint[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidInput('at least one ACS URL is required (or SP metadata that lists one)', 'acsUrls');
  }
  const endpoints = list.map((item) => {
    const e = typeof item === 'string' ? { url: item } : item;
    const url = typeof e.url === 'string' ? e.url.trim() : '';
    const problem = acsUrlProblem(url);
    if (problem) throw new InvalidInput(`ACS URL: ${problem}`, 'acsUrls');
    const given: string = e.binding ?? 'HTTP-POST';
    const binding = Object.hasOwn(BINDING_URNS, given) ? (given as SamlBinding) : bindingFromUrn(given);
    if (!binding) {
      throw new InvalidInput(
        `ACS binding ${given} is not one of ${Object.keys(BINDING_URNS).join(', ')}`,
        'acsUrls',
      );
    }
    return {
      url,
      binding,
      index: e.index,
      isDefault: e.isDefault,
    };
  });
  return normalizeAcs(endpoints, (m) => new InvalidInput(m, 'acsUrls'));
}

function checkCertificates(pems: string[]): string[] {
  if (!Array.isArray(pems))
    throw new InvalidInput('signingCertificates must be a list of PEM certificates', 'signingCertificates');
  const out: string[] = [];
  for (const [i, pem] of pems.entries()) {
    let normalized: string;
    try {
      normalized = certificateToPem(typeof pem === 'string' ? pem : '');
    } catch (err) {
      throw new InvalidInput(
        `signing certificate #${i + 1} is ${(err as Error).message}`,
        'signingCertificates',
      );
    }
    if (!out.includes(normalized)) out.push(normalized);
  }
  return out;
}

export function checkNameIdFormat(format: string): NameIdFormat {
  const f = typeof format === 'string' ? format.trim() : '';
  const byAlias = (NAME_ID_FORMATS as Record<string, NameIdFormat>)[f];
  if (byAlias) return byAlias;
  const known = Object.values(NAME_ID_FORMATS) as string[];
  if (known.includes(f)) return f as NameIdFormat;
  throw new InvalidInput(
    `NameID format "${f}" is not supported; use one of ${Object.keys(NAME_ID_FORMATS).join(', ')}`,
    'nameIdFormat',
  );
}

/** The first format the metadata lists that Ferry can issue; emailAddress when it lists none. */
function formatFromMetadata(metadata: SpMetadata | undefined): NameIdFormat {
  if (!metadata || metadata.nameIdFormats.length === 0) return NAME_ID_FORMATS.emailAddress;
  const known = Object.values(NAME_ID_FORMATS) as string[];
  const usable = metadata.nameIdFormats.find((f) => known.includes(f));
  if (usable) return usable as NameIdFormat;
  throw new InvalidInput(
    `the metadata asks for NameID formats Ferry does not issue (${metadata.nameIdFormats.join(', ')}); ` +
      `pass nameIdFormat explicitly (one of ${Object.keys(NAME_ID_FORMATS).join(', ')})`,
    'nameIdFormat',
  );
}

export function checkAttributeMap(map: Record<string, string>): AttributeMap {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new InvalidInput(
      'attributeMap must be an object { "<SAML attribute name>": "<user field>" }',
      'attributeMap',
    );
  }
  const entries = Object.entries(map);
  if (entries.length > MAX_ATTRIBUTES) {
    throw new InvalidInput(
      `attributeMap has ${entries.length} entries; at most ${MAX_ATTRIBUTES}`,
      'attributeMap',
    );
  }
  const out: AttributeMap = {};
  for (const [samlName, source] of entries) {
    if (
      samlName.trim() !== samlName ||
      samlName.length === 0 ||
      samlName.length > 256 ||
      /\p{Cc}/u.test(samlName)
    ) {
      throw new InvalidInput(
        `attribute name "${samlName}" must be 1-256 characters without surrounding spaces or control characters`,
        'attributeMap',
      );
    }
    if (!isAttributeSource(source)) {
      throw new InvalidInput(
        `attribute "${samlName}" maps to "${String(source)}"; use one of ${USER_FIELDS.join(', ')} or attributes.<key>`,
        'attributeMap',
      );
    }
    out[samlName] = source;
  }
  return out;
}

function isAttributeSource(value: unknown): value is AttributeSource {
  if (typeof value !== 'string') return false;
  if ((USER_FIELDS as readonly string[]).includes(value)) return true;
  return /^attributes\.[A-Za-z_][A-Za-z0-9_-]{0,127}$/.test(value);
}

function checkMinimumAuthnContext(value: string): AuthnStrength {
  const v = typeof value === 'string' ? value.trim() : '';
  const strength = AUTHN_STRENGTHS.find((s) => s === v);
  if (!strength)
    throw new InvalidInput(
      `minimumAuthnContext "${v}" is not one of ${AUTHN_STRENGTHS.join(', ')}`,
      'minimumAuthnContext',
    );
  return strength;
}

function checkSigningConsistency(requireSignedRequests: boolean, certificates: string[]): void {
  if (requireSignedRequests && certificates.length === 0) {
    throw new InvalidInput(
      'requireSignedRequests needs at least one signing certificate to verify the requests with',
      'signingCertificates',
    );
  }
}

function changedFields(a: ServiceProvider, b: ServiceProvider): string[] {
  const keys: Array<keyof ServiceProvider> = [
    'name',
    'entityId',
    'acsUrls',
    'nameIdFormat',
    'attributeMap',
    'signingCertificates',
    'requireSignedRequests',
    'minimumAuthnContext',
    'signStatusResponses',
    'openToAll',
  ];
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/** SHA-256 fingerprint, as the audit trail names a certificate (never the whole PEM). */
export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}
