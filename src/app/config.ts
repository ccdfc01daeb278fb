import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { RULES, SEVERITIES } from '../activity/detections/finding.js';
import { parseDuration } from '../duration.js';
import { onFirstUse } from '../lazy-module.js';
import { isCidr } from '../outbound/target-guard.js';

/** The YAML parser loads when a ferry.yaml is read, not at start (ADR 0046). */
const yaml = onFirstUse<typeof import('yaml')>('yaml');

/** Raised for a config that can't be used; the message names the key and the reason. */
export class ConfigInvalid extends Error {
  constructor(
    readonly source: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${source}: ${key || '(top level)'}: ${reason}`);
    this.name = 'ConfigInvalid';
  }
}

const duration = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === null) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a duration such as 30m, 12h or 90s (got ${JSON.stringify(v)})`,
        });
        return z.NEVER;
      }
      return ms;
    });

/** A duration that may be left out (then the rule's own default holds). */
const optionalDuration = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === null) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as 30m, 12h or 90s (got ${JSON.stringify(v)})`,
      });
      return z.NEVER;
    }
    return ms;
  })
  .optional();

/** A listener's timeouts: slow or idle clients are cut off instead of holding a connection forever. */
const listenerTimeouts = (defaults: { body: string }) => ({
  /** the request line and headers must arrive within this */
  headersTimeout: duration('10s'),
  /** the whole request, headers and body, must arrive within this (a client trickling bytes is cut off) */
  bodyTimeout: duration(defaults.body),
  /** a kept-alive connection with no request in progress is closed after this (above a load balancer's 60 s) */
  idleTimeout: duration('72s'),
});

const headersWithinBody = (t: { headersTimeout: number; bodyTimeout: number }, ctx: z.RefinementCtx) => {
  if (t.headersTimeout > t.bodyTimeout)
    ctx.addIssue({
      code: 'custom',
      path: ['headersTimeout'],
      message: 'must not be longer than bodyTimeout (which covers the headers too)',
    });
};

const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7070');

export const configSchema = z
  .object({
    listen: listen.default('127.0.0.1:7070'),
    publicUrl: z
      .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
      .default('http://127.0.0.1:7070'),
    database: z
      .object({
        url: z
          .string()
          .regex(/^(sqlite:|postgres(ql)?:\/\/)/, 'expected sqlite:PATH or postgres://…')
          .default('sqlite:./data/ferry.db'),
        poolSize: z.number().int().min(1).max(200).default(10),
      })
      .strict()
      .prefault({}),
    keys: z
      .object({
        /** base64 of 32 bytes; FERRY_MASTER_KEY overrides; prefer masterKeyFile in files */
        masterKey: z.string().optional(),
        masterKeyFile: z.string().optional(),
      })
      .strict()
      .prefault({}),
    sessions: z
      .object({
        idleTimeout: duration('30m'),
        absoluteTimeout: duration('12h'),
        cookieName: z
          .string()
          .regex(/^[\w-]+$/)
          .default('ferry_session'),
      })
      .strict()
      .prefault({}),
    signin: z
      .object({
        requireMfa: z.boolean().default(true),
        accountMaxFailures: z.number().int().min(1).max(1000).default(5),
        addressMaxFailures: z.number().int().min(1).max(100000).default(20),
        failureWindow: duration('15m'),
        lockout: duration('15m'),
        /** how recent a session's last authentication must be to change its sign-in methods */
        accountChangeMaxAge: duration('15m'),
        /** password hashes evaluated at once (default: one per core) */
        hashConcurrency: z.number().int().min(1).max(256).optional(),
        /** password checks that may wait for a hash; beyond that sign-in answers 503 at once */
        hashQueue: z.number().int().min(0).max(10_000).default(64),
      })
      .strict()
      .prefault({}),
    passwords: z
      .object({
        memoryKiB: z
          .number()
          .int()
          .min(19456, 'below OWASP minimum (19456 KiB)')
          .max(4_194_304)
          .default(19456),
        iterations: z.number().int().min(2).max(100).default(2),
        parallelism: z.number().int().min(1).max(16).default(1),
      })
      .strict()
      .prefault({}),
    /** serve HTTPS directly: PEM files, read again on SIGHUP (see docs/install.md) */
    tls: z
      .object({ certFile: z.string().min(1), keyFile: z.string().min(1) })
      .strict()
      .optional(),
    http: z
      .object({
        bodyLimit: z
          .number()
          .int()
          .min(1024)
          .max(50 * 1024 * 1024)
          .default(1024 * 1024),
        /** trust X-Forwarded-For from these proxies (true, or addresses/CIDRs) */
        trustProxy: z.union([z.boolean(), z.string(), z.array(z.string())]).default(false),
        ...listenerTimeouts({ body: '30s' }),
      })
      .strict()
      .prefault({})
      .superRefine(headersWithinBody),
    saml: z
      .object({
        /** how long an assertion (and its bearer confirmation) is valid: minutes, not hours */
        assertionLifetime: duration('5m'),
        /** how long a staged signing key is published before it takes over */
        keyRotationGrace: duration('24h'),
      })
      .strict()
      .prefault({}),
    oidc: z
      .object({
        /** bearer tokens for Ferry's API (`ferry creds`, `ferry ssh`): short, refreshed silently */
        accessTokenLifetime: duration('15m'),
        idTokenLifetime: duration('1h'),
        /** how long a CLI sign-in stays valid without the person signing in again */
        refreshTokenLifetime: duration('12h'),
        /** workload (client credentials) access tokens */
        clientCredentialsLifetime: duration('10m'),
        deviceCodeLifetime: duration('10m'),
        /** how long a staged signing key is in the JWKS before it signs */
        keyRotationGrace: duration('24h'),
      })
      .strict()
      .prefault({}),
    aws: z
      .object({
        /** the local AWS (moto) for development and tests; omit for real AWS */
        endpoint: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
        region: z
          .string()
          .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as us-east-1')
          .default('us-east-1'),
        /**
         * Keys for a local AWS only. Against real AWS leave them out: the SDK's default chain (instance
         * or task role, AWS_* environment, profile) provides Ferry's credentials.
         */
        accessKeyId: z.string().optional(),
        secretAccessKey: z.string().optional(),
        /** added to every revocation cutoff, for clock skew between Ferry and AWS */
        revocationClockSkew: duration('60s'),
      })
      .strict()
      .prefault({}),
    identityCenter: z
      .object({
        /** tries per SCIM request to IAM Identity Center (429 and 5xx are retried with backoff) */
        maxAttempts: z.number().int().min(1).max(20).default(6),
        /** first retry delay; it doubles per try (full jitter) up to maxBackoff */
        baseBackoff: duration('250ms'),
        maxBackoff: duration('30s'),
        requestTimeout: duration('30s'),
        /**
         * the AWS access portal URL for the AWS CLI's `sso` profiles `ferry aws config` writes; default
         * https://<identity store id>.awsapps.com/start (set it when the portal has a custom subdomain)
         */
        startUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
        /**
         * what `ferry aws config` writes for permission sets: `sso` (AWS CLI v2 sso-session profiles that
         * sign in at the access portal) or `ferry` (none: people use Ferry-issued role credentials, the
         * credential_process profiles of the IAM roles they are assigned)
         */
        cliProfiles: z.enum(['sso', 'ferry']).default('sso'),
      })
      .strict()
      .prefault({}),
    ssh: z
      .object({
        /** the longest a user certificate may live; login mappings may only shorten it */
        certificateLifetime: duration('15m'),
        /** how long host certificates signed by `ferry ssh host-cert` live unless asked otherwise */
        hostCertificateLifetime: duration('30d'),
        /** write the caller's address (as Ferry sees it) into user certificates as source-address */
        bindSourceAddress: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    upstream: z
      .object({
        /** sign-in with Microsoft Entra ID (OpenID Connect); see docs/entra.md */
        entra: z
          .object({
            /** https://login.microsoftonline.com/<tenant id>/v2.0, or …/organizations/v2.0 with allowedTenants */
            issuer: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
            clientId: z.string().min(1),
            /** prefer clientSecretFile or FERRY_ENTRA_CLIENT_SECRET to a secret in the file */
            clientSecret: z.string().min(1).optional(),
            clientSecretFile: z.string().optional(),
            /** default <publicUrl>/signin/entra/callback */
            redirectUri: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
            /** tenant ids allowed to sign in; default: the tenant named in issuer */
            allowedTenants: z
              .array(
                z
                  .string()
                  .regex(
                    /^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/,
                    'expected a tenant id (GUID)',
                  ),
              )
              .default([]),
            userMapping: z.enum(['provisioned', 'jit']).default('provisioned'),
            /** default: true for jit, false for provisioned (SCIM keeps memberships then) */
            syncGroups: z.boolean().optional(),
            graphUrl: z
              .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
              .default('https://graph.microsoft.com'),
            /** requests meant for https://login.microsoftonline.com go here instead (a local test IdP) */
            loginEndpoint: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
            scopes: z.string().default('openid profile email User.Read'),
            clockTolerance: duration('2m'),
            requestLifetime: duration('10m'),
            label: z.string().min(1).max(60).default('Sign in with Microsoft'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    proxy: z
      .object({
        /** host:port of the identity-aware proxy's listener; unset = no proxy in this process */
        listen: listen.optional(),
        /** audit one allowed request in this many (the first of each session always); 0 = only those */
        auditSampleRate: z.number().int().min(0).max(1_000_000).default(100),
        /** how long the signed X-Ferry-Identity header is valid */
        identityHeaderLifetime: duration('60s'),
        // Uploads through the proxy may be large: the whole request may take longer than on the API.
        ...listenerTimeouts({ body: '5m' }),
      })
      .strict()
      .prefault({})
      .superRefine(headersWithinBody),
    pim: z
      .object({
        /** a PIM request nobody answers within this lapses */
        answerWithin: duration('24h'),
        /** where activation requests and changes are announced (Slack, or signed JSON to any URL) */
        webhooks: z
          .array(
            z
              .object({
                name: z.string().regex(/^[\w.-]{1,64}$/, 'expected a short name (letters, digits, . _ -)'),
                url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
                format: z.enum(['slack', 'generic']).default('generic'),
                /** generic: the HMAC-SHA256 key receivers verify `Ferry-Signature` with */
                secret: z.string().min(32, 'use at least 32 characters').optional(),
              })
              .strict()
              .refine((w) => w.format === 'slack' || w.secret !== undefined, {
                message: 'a generic webhook needs a secret to sign its deliveries',
                path: ['secret'],
              }),
          )
          .default([]),
      })
      .strict()
      .prefault({}),
    /** The audit ledger: where its signed tree heads are published, outside Ferry's database. */
    audit: z
      .object({
        export: z
          .object({
            /** how often the latest signed head is published to every destination */
            interval: duration('60s'),
            destinations: z
              .array(
                z.discriminatedUnion('type', [
                  z
                    .object({
                      type: z.literal('file'),
                      /** a directory (ideally on another machine's mount, or append-only storage) */
                      directory: z.string().min(1),
                    })
                    .strict(),
                  z
                    .object({
                      type: z.literal('webhook'),
                      url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
                    })
                    .strict(),
                  z
                    .object({
                      type: z.literal('s3'),
                      bucket: z.string().min(3),
                      prefix: z.string().default('ferry-audit-heads/'),
                      /** Object Lock retention (COMPLIANCE) when the bucket has Object Lock; 0 = none */
                      retainDays: z.number().int().min(0).max(36_500).default(365),
                      region: z.string().optional(),
                      /** a local S3 (moto) for tests; omit for real AWS */
                      endpoint: z.url({ protocol: /^https?$/ }).optional(),
                    })
                    .strict(),
                ]),
              )
              .default([]),
          })
          .strict()
          .prefault({}),
        /** Retention: sealed events older than archiveAfter go to an archive as signed segments, then leave the database. */
        retention: z
          .object({
            /** archive and prune events older than this (e.g. 400d); omit to keep every event in the database */
            archiveAfter: z
              .union([z.string(), z.number()])
              .optional()
              .transform((v, ctx) => {
                if (v === undefined) return null;
                const ms = parseDuration(v);
                if (ms === null || ms <= 0) {
                  ctx.addIssue({
                    code: 'custom',
                    message: `expected a duration such as 400d (got ${JSON.stringify(v)})`,
                  });
                  return z.NEVER;
                }
                return ms;
              }),
            /** how often the worker looks for events to archive */
            interval: duration('1h'),
            /** at most this many events per segment */
            maxEventsPerSegment: z.number().int().min(1).max(1_000_000).default(50_000),
            destination: z
              .discriminatedUnion('type', [
                z
                  .object({
                    type: z.literal('file'),
                    /** a directory (ideally on another machine's mount, or append-only storage) */
                    directory: z.string().min(1),
                  })
                  .strict(),
                z
                  .object({
                    type: z.literal('s3'),
                    bucket: z.string().min(3),
                    prefix: z.string().default('ferry-audit-archive/'),
                    /** Object Lock retention (COMPLIANCE) when the bucket has Object Lock; 0 = none */
                    retainDays: z.number().int().min(0).max(36_500).default(2555),
                    region: z.string().optional(),
                    /** a local S3 (moto) for tests; omit for real AWS */
                    endpoint: z.url({ protocol: /^https?$/ }).optional(),
                  })
                  .strict(),
              ])
              .optional(),
          })
          .strict()
          .prefault({})
          .refine((r) => r.archiveAfter === null || r.destination !== undefined, {
            message: 'audit.retention.archiveAfter needs a destination to archive to',
            path: ['destination'],
          }),
      })
      .strict()
      .prefault({}),
    cloudtrail: z
      .object({
        /** how often the worker reads new CloudTrail log files from every source (0 = only `ferry cloudtrail sync`) */
        syncInterval: duration('5m'),
        /** records older than this (by eventTime) are removed */
        retention: duration('90d'),
        /** top-level fields of each record kept as `raw` (default: a small subset); `all` keeps whole records */
        keepFields: z.union([z.literal('all'), z.array(z.string().min(1)).min(1)]).optional(),
        /** allowed difference between AWS's clock and Ferry's (correlation windows) */
        clockSkew: duration('5m'),
        /** records per stored batch */
        batchSize: z.number().int().min(1).max(10_000).default(1000),
        /** a local S3 (moto) for tests; omit for real AWS (default: aws.endpoint) */
        endpoint: z.url({ protocol: /^https?$/ }).optional(),
      })
      .strict()
      .prefault({}),
    conditionalAccess: z
      .object({
        /**
         * Device posture assertions (a JWT an MDM or device agent signs, sent as the
         * `X-Ferry-Device-Posture` header): who signs them and with which public key (PEM).
         */
        devicePosture: z
          .object({
            issuer: z.string().min(1),
            publicKeyPem: z.string().min(1),
            /** what the assertions' `aud` must be; default: publicUrl */
            audience: z.string().min(1).optional(),
            /** the oldest assertion (by `iat`) that counts */
            maxAge: duration('5m'),
          })
          .strict()
          .nullable()
          .default(null),
      })
      .strict()
      .prefault({}),
    adminRoles: z
      .object({
        /**
         * What an admin role always asks of the sign-in that uses it (Ferry Administrator: phishing-resistant
         * MFA), on top of conditional access. false only where no person can have a security key (a demo).
         */
        builtInRequirements: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** when set, GET /metrics needs `Authorization: Bearer <token>`; FERRY_METRICS_TOKEN overrides */
        token: z.string().min(16, 'use at least 16 characters').optional(),
      })
      .strict()
      .prefault({}),
    /** CloudTrail and Ferry-side detections (docs/activity.md, "Detections and alerts") */
    detections: z
      .object({
        /** per rule: enabled, severity, dedupWindow; spike rules also threshold and window */
        rules: z
          .partialRecord(
            z.enum(RULES),
            z
              .object({
                enabled: z.boolean().optional(),
                severity: z.enum(SEVERITIES).optional(),
                dedupWindow: optionalDuration,
                threshold: z.number().int().min(1).max(1_000_000).optional(),
                window: optionalDuration,
              })
              .strict(),
          )
          .default({}),
        /** windows in which matching alerts are recorded but not sent (maintenance, planned changes) */
        suppress: z
          .array(
            z
              .object({
                rule: z.enum(RULES).optional(),
                subject: z.string().min(1).optional(),
                account: z
                  .string()
                  .regex(/^\d{12}$/, 'expected a 12-digit AWS account id')
                  .optional(),
                from: z.iso.datetime({ offset: true }),
                until: z.iso.datetime({ offset: true }),
                reason: z.string().min(1).max(200),
              })
              .strict(),
          )
          .default([]),
        /** PIM targets whose activation raises admin-role-activated (* matches any run) */
        administratorRoles: z.array(z.string().min(1)).optional(),
        /** ARNs (trailing * = prefix) of Ferry's own AWS identity: its writes of the deny policy are expected */
        ferryPrincipals: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .prefault({}),
    alerts: z
      .object({
        /** alerts one sink receives per hour at most; the rest are recorded as rate-limited */
        maxPerSinkPerHour: z.number().int().min(1).max(100_000).default(60),
        /** tries per alert and sink before it is recorded as failed (the outbox backs off up to 10 min) */
        maxAttempts: z.number().int().min(1).max(100).default(12),
        /**
         * Sinks may not reach internal addresses (loopback, link-local and cloud metadata, RFC 1918 and
         * fc00::/7, unspecified, multicast) unless allowed here: true for all of them (a lab, the demo),
         * or allowTargetNetworks for the few that are meant (e.g. the SMTP relay's subnet).
         */
        allowPrivateTargets: z.boolean().default(false),
        /** internal networks sinks may reach although allowPrivateTargets is false (CIDRs) */
        allowTargetNetworks: z
          .array(z.string().refine(isCidr, 'expected an address or a CIDR block such as 10.20.0.0/16'))
          .default([]),
        /**
         * Sinks declared here (beside those added with `ferry alerts sink add`), made to match at start.
         * The secret (webhook HMAC key, Slack URL, SMTP password) is given by reference only:
         * `secretEnv` (an environment variable) or `secretFile` (a file); it is sealed in the database.
         */
        sinks: z
          .array(
            z
              .object({
                name: z.string().min(1),
                type: z.enum(['webhook', 'slack', 'email']),
                minSeverity: z.enum(SEVERITIES).optional(),
                url: z.string().min(1).optional(),
                host: z.string().min(1).optional(),
                port: z.number().int().optional(),
                secure: z.boolean().optional(),
                requireTls: z.boolean().optional(),
                user: z.string().min(1).optional(),
                from: z.string().min(1).optional(),
                to: z.array(z.string().min(1)).optional(),
                secretEnv: z.string().min(1).optional(),
                secretFile: z.string().min(1).optional(),
              })
              .strict()
              .refine((s) => !(s.secretEnv && s.secretFile), 'give secretEnv or secretFile, not both'),
          )
          .default([]),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.output<typeof configSchema>;

/** Environment variables that override the file, as FERRY_<NAME> → key path. */
const envOverrides: Record<string, string[]> = {
  FERRY_LISTEN: ['listen'],
  FERRY_PUBLIC_URL: ['publicUrl'],
  FERRY_DATABASE_URL: ['database', 'url'],
  FERRY_MASTER_KEY: ['keys', 'masterKey'],
  FERRY_MASTER_KEY_FILE: ['keys', 'masterKeyFile'],
  FERRY_LOG_LEVEL: ['log', 'level'],
  FERRY_AWS_ENDPOINT: ['aws', 'endpoint'],
  FERRY_REQUIRE_MFA: ['signin', 'requireMfa'],
  FERRY_ENTRA_CLIENT_SECRET: ['upstream', 'entra', 'clientSecret'],
  FERRY_PROXY_LISTEN: ['proxy', 'listen'],
  FERRY_METRICS_TOKEN: ['metrics', 'token'],
};

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path.at(-1)!] = value;
}

function parseBoolean(variable: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigInvalid(
    `environment variable ${variable}`,
    'signin.requireMfa',
    `expected true or false (got ${value})`,
  );
}

function hasEntraSection(raw: Record<string, unknown>): boolean {
  const upstream = raw.upstream as Record<string, unknown> | undefined;
  return typeof upstream?.entra === 'object' && upstream.entra !== null;
}

export interface LoadedConfig {
  config: Config;
  /** the file it came from, or null when only defaults and environment were used */
  path: string | null;
}

/** Resolves the config path: --config, then FERRY_CONFIG, then ./ferry.yaml if present. */
export function configPath(explicit: string | undefined, env: NodeJS.ProcessEnv): string | null {
  if (explicit) return resolve(explicit);
  if (env.FERRY_CONFIG) return resolve(env.FERRY_CONFIG);
  return existsSync('ferry.yaml') ? resolve('ferry.yaml') : null;
}

export function loadConfig(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = configPath(explicit, env);
  let raw: unknown = {};
  const source = path ?? 'configuration';
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigInvalid(
        path,
        '',
        `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    try {
      raw = yaml.parse(text) ?? {};
    } catch (err) {
      throw new ConfigInvalid(path, '', `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new ConfigInvalid(path, '', 'expected a mapping of keys to values');
    }
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  const fromEnv = new Map<string, string>(); // key path → variable, to blame the right source
  for (const [name, keyPath] of Object.entries(envOverrides)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    // The secret alone does not turn Entra sign-in on: it fills in a configured upstream.entra.
    if (name === 'FERRY_ENTRA_CLIENT_SECRET' && !hasEntraSection(merged)) continue;
    setPath(merged, keyPath, name === 'FERRY_REQUIRE_MFA' ? parseBoolean(name, value) : value);
    fromEnv.set(keyPath.join('.'), name);
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    let reason = issue.message;
    if (issue.code === 'unrecognized_keys') {
      reason = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    }
    const key = issue.path.join('.');
    const variable = fromEnv.get(key);
    throw new ConfigInvalid(variable ? `environment variable ${variable}` : source, key, reason);
  }
  const config = parsed.data;
  // Relative paths in a config file are relative to that file, not to the working directory.
  const base = path ? dirname(path) : process.cwd();
  if (config.database.url.startsWith('sqlite:')) {
    const file = config.database.url.slice('sqlite:'.length);
    if (file !== ':memory:' && !isAbsolute(file)) config.database.url = `sqlite:${resolve(base, file)}`;
  }
  const entra = config.upstream.entra;
  if (entra?.clientSecretFile && !isAbsolute(entra.clientSecretFile)) {
    entra.clientSecretFile = resolve(base, entra.clientSecretFile);
  }
  if (config.tls) {
    config.tls.certFile = resolve(base, config.tls.certFile);
    config.tls.keyFile = resolve(base, config.tls.keyFile);
  }
  if (config.keys.masterKeyFile && !isAbsolute(config.keys.masterKeyFile)) {
    config.keys.masterKeyFile = resolve(base, config.keys.masterKeyFile);
  }
  return { config, path };
}
