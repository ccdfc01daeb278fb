import { isIP } from 'node:net';
import type { AccessDecider } from '../access/decide.js';
import type { Decision, Reason, Requirement } from '../access/decision.js';
import type { Principal, Signals } from '../access/principal.js';
import { HOST_PATTERN, LOGIN_PATTERN } from '../access/ssh-logins.js';
import { stepUpAdvice } from '../access/step-up-advice.js';
import { formatTarget } from '../access/targets.js';
import type { AuditContext } from '../audit/actor.js';
import { type IssuedCredential, listIssued } from '../audit/issued.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { InvalidInput, NotFound } from '../errors.js';
import type { SshCaAlgorithm, SshCaKey, SshCaKeys } from '../keys/ssh-ca-keys.js';
import { Problem } from '../problem.js';
import type { Store } from '../store/open.js';
import { type CertificateAuthorityKey, caKeyOf, signCertificate, type UserExtension } from './certificate.js';
import { IssuanceCommits } from './issuance-commits.js';
import { encodeKrl } from './krl.js';
import { fingerprint, parsePublicKey } from './public-key.js';
import { SerialBlocks } from './serials.js';

/** Certificates are valid from this long before they are issued: servers' clocks drift. */
export const CLOCK_SKEW_SECONDS = 60;
/** Host certificates: at most a year; servers renew them from their own timer. */
export const MAX_HOST_CERT_SECONDS = 366 * 86400;

export interface SshAuthorityOptions {
  /** seconds: default validity of host certificates */
  hostCertificateLifetime: number;
  /** write the caller's address into user certificates as source-address */
  bindSourceAddress: boolean;
}

export interface UserCertificateRequest {
  publicKey: string;
  host: string;
  /** the Linux login; when absent, the one login the principal's mappings give on that host */
  login?: string;
  /** seconds; capped at what decide() allows */
  duration?: number;
  /** which CA signs: Ed25519 (default) or RSA for servers without Ed25519 */
  caAlgorithm?: SshCaAlgorithm;
}

export interface IssuedCertificate {
  certificate: string;
  serial: string;
  keyId: string;
  principals: string[];
  validAfter: string;
  validBefore: string;
  extensions: string[];
  criticalOptions: Record<string, string>;
  caFingerprint: string;
  publicKeyFingerprint: string;
}

/** 403 with decide()'s reasons: the person may not have a certificate for this host and login. */
export class SshAccessDenied extends Problem {
  constructor(target: string, reasons: Reason[], require?: Requirement[]) {
    super(
      403,
      'access-denied',
      'Forbidden',
      `no SSH certificate for ${target}: ${reasons.map((r) => r.message).join('; ')}${require ? `. ${stepUpAdvice(require)}` : ''}`,
      {
        target,
        reasons,
        ...(require ? { effect: 'step-up', require } : {}),
      },
    );
  }
}

/**
 * Ferry's SSH certificate authority. It never decides who may log in where: it asks decide() for
 * `ssh:<login>@<host>` and signs a certificate no longer-lived than the decision allows, with the
 * person's UPN and the serial as key id (sshd logs both), recorded in the issued ledger and audited
 * in the same transaction that takes its serial.
 */
export class SshAuthority {
  /** serials unique across instances, reserved by the block (serials.ts) */
  readonly #serials: SerialBlocks;
  /** ledger rows and audit events of issued certificates, group-committed (issuance-commits.ts) */
  readonly #commits: IssuanceCommits;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly keys: SshCaKeys,
    private readonly access: AccessDecider,
    private readonly options: SshAuthorityOptions,
  ) {
    this.#serials = new SerialBlocks(store.db);
    this.#commits = new IssuanceCommits(store, clock);
  }

  async issueUserCertificate(
    principal: Principal,
    signals: Signals,
    request: UserCertificateRequest,
    ctx: AuditContext,
  ): Promise<IssuedCertificate> {
    const publicKey = parsePublicKey(request.publicKey);
    const host = request.host.trim();
    if (!(host === '*' || HOST_PATTERN.test(host)) || /[*?]/.test(host.replace(/^\*$/, '')))
      throw new InvalidInput(`host ${JSON.stringify(host)} is not a host name (or * for every host)`, 'host');
    if (request.login !== undefined && !LOGIN_PATTERN.test(request.login))
      throw new InvalidInput(`login ${JSON.stringify(request.login)} is not a Linux user name`, 'login');
    if (request.duration !== undefined && (!Number.isInteger(request.duration) || request.duration < 1))
      throw new InvalidInput('duration is a positive number of seconds', 'duration');
    let login = request.login;
    if (login === undefined) {
      const offered = await this.access.sshLoginsFor(principal, host);
      if (offered.length === 1) login = offered[0]!;
      else if (offered.length > 1)
        throw new InvalidInput(`name the login: you may use ${offered.join(', ')} on ${host}`, 'login');
      else login = '';
    }
    const target = { kind: 'ssh' as const, host, login };
    const decision = await this.access.decide(principal, target, signals);
    if (decision.effect !== 'allow') await this.#refuse(principal, formatTarget(target), decision, ctx);
    const allowed = decision as Extract<Decision, { effect: 'allow' }>;

    const duration = Math.min(request.duration ?? allowed.maxDuration, allowed.maxDuration);
    const extensions: UserExtension[] = ['permit-pty'];
    if (allowed.ssh?.portForwarding) extensions.push('permit-port-forwarding');
    if (allowed.ssh?.agentForwarding) extensions.push('permit-agent-forwarding');
    const criticalOptions: Record<string, string> = {};
    if (this.options.bindSourceAddress && signals.ip)
      criticalOptions['source-address'] = sourceAddress(signals.ip);
    const ca = await this.#signer('user', request.caAlgorithm ?? 'ssh-ed25519');
    const now = this.clock.now();
    const issuedAt = Math.floor(now.getTime() / 1000);
    const validAfter = issuedAt - CLOCK_SKEW_SECONDS;
    const validBefore = issuedAt + duration;

    {
      const serial = await this.#serials.next();
      const keyId = `${principal.userName} serial ${serial}`;
      const cert = signCertificate(
        {
          publicKey,
          type: 'user',
          serial,
          keyId,
          principals: [login],
          validAfter,
          validBefore,
          criticalOptions,
          extensions,
        },
        ca.signer,
      );
      const result: IssuedCertificate = {
        certificate: cert.line,
        serial: String(serial),
        keyId,
        principals: [login],
        validAfter: iso(new Date(validAfter * 1000)),
        validBefore: iso(new Date(validBefore * 1000)),
        extensions: [...extensions].sort(),
        criticalOptions,
        caFingerprint: ca.fingerprint,
        publicKeyFingerprint: fingerprint(publicKey.blob),
      };
      const details = {
        keyId,
        principals: result.principals,
        extensions: result.extensions,
        criticalOptions,
        caKeyId: ca.key.id,
        caFingerprint: result.caFingerprint,
        publicKeyFingerprint: result.publicKeyFingerprint,
        reasons: allowed.reasons.map((r) => r.message),
      };
      // Handed out only once its ledger row and audit event are committed (with others' at the time).
      await this.#commits.write({
        issued: {
          kind: 'ssh-certificate',
          userId: principal.id,
          subject: principal.userName,
          target: formatTarget(target),
          audience: null,
          externalId: String(serial),
          details,
          expiresAt: new Date(validBefore * 1000),
        },
        audit: {
          type: 'ssh-certificate.issued',
          outcome: 'success',
          actor: ctx.actor,
          subject: principal.userName,
          ip: ctx.ip ?? null,
          requestId: ctx.requestId ?? null,
          data: {
            serial: result.serial,
            target: formatTarget(target),
            validBefore: result.validBefore,
            ...details,
          },
        },
      });
      return result;
    }
  }

  async #refuse(principal: Principal, target: string, decision: Decision, ctx: AuditContext): Promise<never> {
    await this.store.db.transaction().execute((trx) =>
      appendAudit(trx, this.store.engine, this.clock, {
        type: 'ssh-certificate.denied',
        outcome: 'failure',
        actor: ctx.actor,
        subject: principal.userName,
        ip: ctx.ip ?? null,
        requestId: ctx.requestId ?? null,
        data: { target, effect: decision.effect, reasons: decision.reasons.map((r) => r.message) },
      }),
    );
    throw new SshAccessDenied(
      target,
      decision.reasons,
      decision.effect === 'step-up' ? decision.require : undefined,
    );
  }

  /** Signs a server's host key (admin only: the caller vouches for the host names). */
  async signHostCertificate(
    request: { publicKey: string; hostnames: string[]; duration?: number },
    ctx: AuditContext,
  ): Promise<IssuedCertificate> {
    const publicKey = parsePublicKey(request.publicKey);
    if (request.hostnames.length === 0) throw new InvalidInput('give at least one host name', 'hostnames');
    for (const h of request.hostnames) {
      if (!HOST_PATTERN.test(h) || /[?]/.test(h))
        throw new InvalidInput(`host name ${JSON.stringify(h)} is not valid`, 'hostnames');
    }
    const duration = request.duration ?? this.options.hostCertificateLifetime;
    if (!Number.isInteger(duration) || duration < 60 || duration > MAX_HOST_CERT_SECONDS)
      throw new InvalidInput(`duration is seconds between 60 and ${MAX_HOST_CERT_SECONDS}`, 'duration');
    const ca = await this.#signer('host', 'ssh-ed25519');
    const issuedAt = Math.floor(this.clock.now().getTime() / 1000);
    const validAfter = issuedAt - CLOCK_SKEW_SECONDS;
    const validBefore = issuedAt + duration;
    const principals = [...new Set(request.hostnames)];
    {
      const serial = await this.#serials.next();
      const keyId = `host ${principals[0]} serial ${serial}`;
      const cert = signCertificate(
        { publicKey, type: 'host', serial, keyId, principals, validAfter, validBefore },
        ca.signer,
      );
      const result: IssuedCertificate = {
        certificate: cert.line,
        serial: String(serial),
        keyId,
        principals,
        validAfter: iso(new Date(validAfter * 1000)),
        validBefore: iso(new Date(validBefore * 1000)),
        extensions: [],
        criticalOptions: {},
        caFingerprint: fingerprint(ca.signer.publicBlob),
        publicKeyFingerprint: fingerprint(publicKey.blob),
      };
      await this.#commits.write({
        issued: {
          kind: 'ssh-host-certificate',
          userId: null,
          subject: principals[0]!,
          target: `ssh-host:${principals.join(',')}`,
          audience: null,
          externalId: String(serial),
          details: {
            keyId,
            principals,
            caKeyId: ca.key.id,
            publicKeyFingerprint: result.publicKeyFingerprint,
          },
          expiresAt: new Date(validBefore * 1000),
        },
        audit: {
          type: 'ssh-host-certificate.issued',
          outcome: 'success',
          actor: ctx.actor,
          subject: principals[0]!,
          ip: ctx.ip ?? null,
          requestId: ctx.requestId ?? null,
          data: { serial: result.serial, keyId, principals, validBefore: result.validBefore },
        },
      });
      return result;
    }
  }

  /** Creates the CA keys that do not exist yet (Ed25519 and RSA user CAs, Ed25519 host CA). */
  async ensureKeys(): Promise<void> {
    await this.keys.ensureCurrent('user', 'ssh-ed25519');
    await this.keys.ensureCurrent('host', 'ssh-ed25519');
    await this.keys.ensureCurrent('user', 'rsa-sha2-512');
  }

  /** The TrustedUserCAKeys file: one line per published user CA key. */
  async trustedUserCaKeys(): Promise<string> {
    await this.ensureKeys();
    const keys = await this.keys.published('user');
    return keys.map((k) => `${k.publicKey} ferry-user-ca-${k.state}\n`).join('');
  }

  /** known_hosts lines that trust host certificates from Ferry's host CA for the given host pattern. */
  async knownHosts(pattern: string): Promise<string> {
    if (!HOST_PATTERN.test(pattern) && !/^[\w.*?,:[\]-]+$/.test(pattern))
      throw new InvalidInput(`hosts ${JSON.stringify(pattern)} is not a host pattern`, 'hosts');
    await this.ensureKeys();
    const keys = await this.keys.published('host');
    return keys.map((k) => `@cert-authority ${pattern} ${k.publicKey} ferry-host-ca-${k.state}\n`).join('');
  }

  /**
   * The KRL: serials of user certificates revoked before they expired, under every user CA key that
   * might have signed them. Expired certificates drop out (sshd refuses them anyway).
   */
  async krl(): Promise<Buffer> {
    await this.ensureKeys();
    const now = this.clock.now();
    const rows = await this.store.db
      .selectFrom('issued_credentials')
      .select(['external_id', 'revoked_at'])
      .where('kind', '=', 'ssh-certificate')
      .where('revoked_at', 'is not', null)
      .where('expires_at', '>', iso(now))
      .execute();
    const serials = rows.map((r) => BigInt(r.external_id));
    const latest =
      rows
        .map((r) => r.revoked_at!)
        .sort()
        .at(-1) ?? '';
    const cas = await this.keys.all('user');
    return encodeKrl({
      // The version moves with the newest revocation, so an unchanged list keeps its version.
      version: BigInt(latest ? Math.floor(Date.parse(latest) / 1000) : 0),
      generatedAt: Math.floor(now.getTime() / 1000),
      comment: 'Ferry SSH user CA revocations',
      revoked: cas.map((k) => ({ caPublicBlob: caKeyOf(k.privateKey).publicBlob, serials })),
    });
  }

  /** Revokes one user certificate by serial (idempotent): it goes into the KRL at once. */
  async revoke(ctx: AuditContext, serial: string, reason: string): Promise<IssuedCredential> {
    if (!/^\d{1,19}$/.test(serial)) throw new InvalidInput('a serial is a positive integer', 'serial');
    return this.store.db.transaction().execute(async (trx) => {
      const [cert] = await listIssued(trx, { externalId: serial, kind: 'ssh-certificate', limit: 1 });
      if (!cert) throw new NotFound('ssh certificate', serial);
      if (cert.revokedAt) return cert;
      const now = iso(this.clock.now());
      await trx
        .updateTable('issued_credentials')
        .set({ revoked_at: now })
        .where('id', '=', cert.id)
        .execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'ssh-certificate.revoked',
        outcome: 'success',
        actor: ctx.actor,
        subject: cert.subject,
        ip: ctx.ip ?? null,
        requestId: ctx.requestId ?? null,
        data: { serials: [serial], reason },
      });
      return { ...cert, revokedAt: now };
    });
  }

  /**
   * Revokes every unexpired certificate of a person (offboarding: user.deactivated / user.deleted).
   * Idempotent, as outbox handlers must be; returns the serials newly revoked.
   */
  async revokeForUser(ctx: AuditContext, userId: string, reason: string): Promise<string[]> {
    return this.store.db.transaction().execute(async (trx) => {
      const now = iso(this.clock.now());
      const rows = await trx
        .selectFrom('issued_credentials')
        .select(['id', 'external_id', 'subject'])
        .where('kind', '=', 'ssh-certificate')
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .execute();
      if (rows.length === 0) return [];
      await trx
        .updateTable('issued_credentials')
        .set({ revoked_at: now })
        .where(
          'id',
          'in',
          rows.map((r) => r.id),
        )
        .execute();
      const serials = rows.map((r) => r.external_id);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'ssh-certificate.revoked',
        outcome: 'success',
        actor: ctx.actor,
        subject: rows[0]!.subject,
        ip: ctx.ip ?? null,
        requestId: ctx.requestId ?? null,
        data: { serials, reason, userId },
      });
      return serials;
    });
  }

  async #signer(
    use: 'user' | 'host',
    algorithm: SshCaAlgorithm,
  ): Promise<{ key: SshCaKey; signer: CertificateAuthorityKey; fingerprint: string }> {
    const key = await this.keys.signing(use, algorithm);
    let signer = this.#signers.get(key.id);
    if (!signer) {
      const ca = caKeyOf(key.privateKey);
      signer = { signer: ca, fingerprint: fingerprint(ca.publicBlob) };
      this.#signers.set(key.id, signer);
    }
    return { key, ...signer };
  }

  readonly #signers = new Map<string, { signer: CertificateAuthorityKey; fingerprint: string }>();
}

/**
 * The caller's address as sshd will see it: an IPv4 client of a dual-stack listener arrives as
 * ::ffff:a.b.c.d. Anything that is not an address (a forged X-Forwarded-For) refuses the request
 * rather than writing it into a critical option.
 */
export function sourceAddress(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const address = v4 ?? ip;
  if (isIP(address) === 0)
    throw new InvalidInput(`cannot bind the certificate to the caller's address ${JSON.stringify(ip)}`, 'ip');
  return address;
}
