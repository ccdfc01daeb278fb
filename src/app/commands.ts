import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Actor } from '../audit/actor.js';

import type { Store } from '../store/open.js';
import type { Config } from './config.js';
import { capYoungGeneration } from './young-generation.js';

// The server, database drivers and the rest load only when an operator command runs, so that client
// commands (which share this program) start in milliseconds rather than loading the whole server.
const lazy = {
  config: () => import('./config.js'),
  start: () => import('./start.js'),
  store: () => import('../store/open.js'),
  migrate: () => import('../store/migrate.js'),
};

/** Operator commands: run beside the server's config and work on its database directly. */
export function registerOperatorCommands(program: Command): void {
  const configOption = [
    '-c, --config <path>',
    'ferry.yaml to use (default: $FERRY_CONFIG or ./ferry.yaml)',
  ] as const;

  program
    .command('serve')
    .description('run the Ferry server')
    .option(...configOption)
    .action(async (opts: { config?: string }) => {
      // Before the server's modules load: loading them is what grows the young generation (ADR 0054).
      capYoungGeneration();
      const { config, path } = (await lazy.config()).loadConfig(opts.config);
      const { startFerry } = await lazy.start();
      const ferry = await startFerry({ config, configSource: path ?? 'configuration' });
      const shutdown = (signal: string) => {
        ferry.app.log.info({ signal }, 'shutting down');
        ferry.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      // Certificate renewal (certbot, cert-manager) without a restart: new connections get the new pair.
      process.on('SIGHUP', () => ferry.reloadTls());
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });

  program
    .command('init')
    .description('write a commented starter ferry.yaml and a master key file')
    .option('-c, --config <path>', 'where to write the config', 'ferry.yaml')
    .option('--force', 'overwrite an existing config')
    .action(async (opts: { config: string; force?: boolean }) => {
      const { loadConfig } = await lazy.config();
      const { STARTER_CONFIG } = await import('./init-template.js');
      const { ensureMasterKeyFile } = await import('./master-key.js');
      const path = resolve(opts.config);
      if (existsSync(path) && !opts.force) {
        throw new OperatorError(`${path} exists; use --force to overwrite it`);
      }
      writeFileSync(path, STARTER_CONFIG, { mode: 0o640 });
      const { config } = loadConfig(path);
      const created = config.keys.masterKeyFile ? ensureMasterKeyFile(config.keys.masterKeyFile) : false;
      process.stdout.write(`wrote ${path}\n`);
      if (created)
        process.stdout.write(`created master key ${config.keys.masterKeyFile} (mode 0600): back it up\n`);
      process.stdout.write(`next: ferry admin token create --name admin --config ${opts.config}\n`);
    });

  const db = program.command('db').description('database maintenance');
  db.command('migrate')
    .description('bring the database schema up to date')
    .option(...configOption)
    .action(async (opts: { config?: string }) => {
      await withStore(opts.config, async (store, config) => {
        const { redactUrl } = await lazy.store();
        const applied = await (await lazy.migrate()).migrateToLatest(store);
        process.stdout.write(
          `${redactUrl(config.database.url)}: ${applied.length ? `applied ${applied.join(', ')}` : 'already up to date'}\n`,
        );
      });
    });

  program
    .command('doctor')
    .description(
      'check config, database and migrations, file modes, keys, clock skew, AWS and the public URL; exits 1 on a problem',
    )
    .option(...configOption)
    .option('--json', 'print the checks as JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const { runDoctor, formatChecks } = await import('./doctor.js');
      const checks = await runDoctor(opts.config);
      process.stdout.write(opts.json ? `${JSON.stringify(checks)}\n` : formatChecks(checks));
      if (checks.some((c) => c.status === 'fail')) process.exitCode = 1;
    });

  program
    .command('backup')
    .description(
      'copy the database while Ferry runs (SQLite online backup, or pg_dump); the master key is not in it',
    )
    .requiredOption('--out <file>', 'where to write the backup (created 0600; refused if it exists)')
    .option(...configOption)
    .action(async (opts: { out: string; config?: string }) => {
      const { config } = await configuredOrRefuse(opts.config);
      const { backupDatabase } = await import('./backup.js');
      const out = await backupDatabase(config.database.url, resolve(opts.out));
      process.stdout.write(`wrote ${out}\n`);
      process.stderr.write(
        `The master key is not in the backup: keep ${config.keys.masterKeyFile ?? 'FERRY_MASTER_KEY'} backed up apart from it.\n`,
      );
    });

  program
    .command('restore')
    .description(
      'replace the database with a backup (stop every Ferry instance first), then verify the audit trail',
    )
    .argument('<file>', 'a file written by ferry backup')
    .option('--force', 'replace a database that exists')
    .option(...configOption)
    .action(async (file: string, opts: { force?: boolean; config?: string }) => {
      const { config } = await configuredOrRefuse(opts.config);
      const { restoreDatabase } = await import('./backup.js');
      await restoreDatabase(config.database.url, resolve(file), { force: opts.force ?? false });
      process.stdout.write(`restored ${resolve(file)}\n`);
      await withStore(opts.config, async (store, config) => {
        const { verifyLedger } = await import('../audit/verify.js');
        const result = await verifyLedger(store.db, { keys: await trustedKeys(store, config, undefined) });
        if (result.ok)
          process.stdout.write(
            `audit ledger intact: ${result.events} sealed events${
              result.unsealed
                ? `, ${result.unsealed} not sealed yet (the server seals them when it starts)`
                : ''
            }\n`,
          );
        else {
          const bad = result.firstBad!;
          process.stdout.write(
            `audit ledger BROKEN${bad.leafIndex === null ? '' : ` at leaf ${bad.leafIndex}`}: ${bad.reason}\n`,
          );
          process.exitCode = 1;
        }
      });
    });

  db.command('copy')
    .description('move a SQLite installation to PostgreSQL (sessions, keys, audit ledger); stop Ferry first')
    .requiredOption('--to <url>', 'the PostgreSQL database, postgres://user@host:5432/ferry (empty)')
    .option(...configOption)
    .action(async (opts: { to: string; config?: string }) => {
      const { config } = await configuredOrRefuse(opts.config);
      const { copyDatabase } = await import('./db-copy.js');
      const { redactUrl } = await lazy.store();
      const result = await copyDatabase(config.database.url, opts.to);
      process.stdout.write(
        `copied ${result.rows} rows in ${result.tables} tables to ${redactUrl(opts.to)}\nnext: set database.url to it, then ferry audit verify and ferry serve\n`,
      );
    });

  const admin = program
    .command('admin')
    .description('bootstrap administration (works on the database directly)');
  const token = admin.command('token').description('admin API tokens');
  token
    .command('create')
    .description('create an admin API token and print it once')
    .requiredOption('--name <name>', 'what the token is for, e.g. admin or terraform')
    .option('--expires-in <days>', 'days until it expires (default: never)')
    .option(
      '--scope <permission...>',
      'permissions it carries, e.g. audit:read users:read (default: * = all; see docs/api.md)',
    )
    .option(...configOption)
    .action(async (opts: { name: string; expiresIn?: string; scope?: string[]; config?: string }) => {
      await withStore(opts.config, async (store, config) => {
        await (await lazy.migrate()).migrateToLatest(store);
        const { systemClock } = await import('../clock.js');
        const { ApiTokens, checkScopes } = await import('../identity/api-tokens.js');
        const { PERMISSIONS } = await import('../access/admin-roles.js');
        let scopes: string[] | undefined;
        try {
          scopes = opts.scope
            ? checkScopes(
                opts.scope.flatMap((s) => s.split(',')),
                PERMISSIONS,
              )
            : undefined;
        } catch (err) {
          throw new OperatorError((err as Error).message);
        }
        const { loadMasterKey } = await import('./master-key.js');
        const masterKey = loadMasterKey(config, opts.config ?? 'configuration');
        const days = opts.expiresIn === undefined ? undefined : Number(opts.expiresIn);
        if (days !== undefined && !(days > 0))
          throw new OperatorError('--expires-in must be a positive number of days');
        const expiresAt = days
          ? new Date(systemClock.now().getTime() + days * 86_400_000).toISOString()
          : null;
        const actor: Actor = { type: 'operator', name: process.env.USER ?? 'operator' };
        const { token: value } = await new ApiTokens(store, systemClock, masterKey).create(
          { actor },
          { name: opts.name, expiresAt, scopes },
        );
        process.stdout.write(`${value}\n`);
        process.stderr.write('This token is shown once. Use it as: export FERRY_TOKEN=<token>\n');
      });
    });

  const audit =
    program.commands.find((c) => c.name() === 'audit') ??
    program.command('audit').description('the audit trail');
  audit
    .command('verify')
    .description(
      'recompute the audit Merkle tree and check it against every signed tree head (and published heads); exits 1 naming what is wrong',
    )
    .option(...configOption)
    .option(
      '--against <path...>',
      'published heads (files or directories of exported heads) the database must still contain',
    )
    .option('--from-head <file>', 'a head saved earlier: the current tree must extend it')
    .option('--public-key <file>', 'trust only this Ed25519 public key (PEM) instead of the sealed keys')
    .option(
      '--archive <location>',
      'also check the archived segments of pruned events: a directory or s3://bucket/prefix/',
    )
    .option('--json', 'print the result as JSON')
    .action(
      async (opts: {
        config?: string;
        against?: string[];
        fromHead?: string;
        publicKey?: string;
        archive?: string;
        json?: boolean;
      }) => {
        const { readHeads } = await import('../audit/export.js');
        const against = [
          ...readHeads(opts.against ?? []),
          ...readHeads(opts.fromHead ? [opts.fromHead] : []),
        ];
        await withStore(opts.config, async (store, config) => {
          const { verifyLedger } = await import('../audit/verify.js');
          const keys = await trustedKeys(store, config, opts.publicKey);
          const archive = opts.archive ? await archiveAt(opts.archive, config) : undefined;
          const result = await verifyLedger(store.db, { keys, against, archive });
          if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
          else if (result.ok)
            process.stdout.write(
              `audit ledger intact: ${result.events} events, ${result.headsChecked} signed heads checked${
                against.length ? ` (${against.length} published)` : ''
              }${result.unsealed ? `, ${result.unsealed} not sealed yet` : ''}${
                result.archived === 0
                  ? ''
                  : result.archiveChecked
                    ? ` (leaves below ${result.archived} checked in the archive)`
                    : `; leaves below ${result.archived} are archived and were not checked (add --archive)`
              }\n`,
            );
          else {
            const bad = result.firstBad!;
            const at =
              bad.leafIndex === null ? '' : ` at leaf ${bad.leafIndex}${bad.id ? ` (${bad.id})` : ''}`;
            const file = bad.file ? ` in ${bad.file}` : '';
            process.stdout.write(`audit ledger BROKEN${at}${file}: ${bad.reason}\n`);
          }
          if (!result.ok) process.exitCode = 1;
        });
      },
    );

  audit
    .command('prove')
    .description('print an inclusion proof for one event: checkable offline with the public key alone')
    .argument('<event-id>', 'the audit event id')
    .option('--size <n>', 'against the signed head of this tree size (default: the latest)')
    .option(
      '--archive <location>',
      'prove an archived event from its segment (against the signed head at the segment end): a directory or s3://bucket/prefix/',
    )
    .option(
      '--leaf <n>',
      "with --archive: the event's leaf index (leafIndex in listings, exports and SIEM records); only the segment holding it is read",
    )
    .option(...configOption)
    .action(
      async (eventId: string, opts: { size?: string; archive?: string; leaf?: string; config?: string }) => {
        await withStore(opts.config, async (store, config) => {
          const { proveInclusion } = await import('../audit/verify.js');
          const key = await (await auditKeys(store, config)).current();
          const proof = await ledgerCall(async () => {
            if (opts.archive) {
              const { proveFromArchive, recordedSegments } = await import('../audit/archive.js');
              const leafIndex = await archivedLeafOf(store, eventId, opts.leaf);
              return proveFromArchive(await archiveAt(opts.archive, config), eventId, {
                leafIndex,
                segments: await recordedSegments(store.db),
                publicKey: key.publicKeyPem,
              });
            }
            return proveInclusion(store.db, eventId, {
              treeSize: opts.size === undefined ? undefined : Number(opts.size),
              publicKey: key.publicKeyPem,
            });
          });
          process.stdout.write(`${JSON.stringify(proof, null, 2)}\n`);
        });
      },
    );

  audit
    .command('consistency')
    .description('print a proof that the tree of one signed head extends the tree of an older one')
    .requiredOption('--from <size>', 'tree size of the older signed head')
    .option('--to <size>', 'tree size of the newer signed head (default: the latest)')
    .option(...configOption)
    .action(async (opts: { from: string; to?: string; config?: string }) => {
      await withStore(opts.config, async (store) => {
        const { proveConsistency } = await import('../audit/verify.js');
        const proof = await ledgerCall(() =>
          proveConsistency(store.db, Number(opts.from), opts.to === undefined ? undefined : Number(opts.to)),
        );
        process.stdout.write(`${JSON.stringify(proof, null, 2)}\n`);
      });
    });

  audit
    .command('archive')
    .description(
      'write sealed events older than a time to the archive (audit.retention.destination) as signed segments, then prune them from the database',
    )
    .option('--before <time>', 'ISO-8601 time or an age like 400d (default: audit.retention.archiveAfter)')
    .option('--dry-run', 'say what would be archived; write and delete nothing')
    .option('--json', 'print the result as JSON')
    .option(...configOption)
    .action(async (opts: { before?: string; dryRun?: boolean; json?: boolean; config?: string }) => {
      await withStore(opts.config, async (store, config) => {
        const { archiveAudit, AuditArchiveRefused } = await import('../audit/archive.js');
        const { auditArchiveOf } = await import('./services.js');
        const { systemClock } = await import('../clock.js');
        const { withLease, LeaseBusy } = await import('../store/leases.js');
        const archive = auditArchiveOf(config, systemClock);
        if (!archive)
          throw new OperatorError('no archive configured: set audit.retention.destination in ferry.yaml');
        const before = opts.before
          ? parseBefore(opts.before, systemClock.now())
          : config.audit.retention.archiveAfter !== null
            ? new Date(systemClock.now().getTime() - config.audit.retention.archiveAfter)
            : null;
        if (!before) throw new OperatorError('say --before, or set audit.retention.archiveAfter');
        const keys = await auditKeys(store, config);
        let result: Awaited<ReturnType<typeof archiveAudit>>;
        try {
          result = await withLease(
            store,
            'audit-archive',
            (signal) =>
              archiveAudit(
                { store, clock: systemClock, keys, archive },
                {
                  before,
                  dryRun: opts.dryRun,
                  actor: { type: 'operator', name: process.env.USER ?? 'operator' },
                  maxEvents: config.audit.retention.maxEventsPerSegment,
                  signal,
                },
              ),
            { waitMs: 10_000, leaseMs: 60_000 },
          );
        } catch (err) {
          if (err instanceof LeaseBusy)
            throw new OperatorError('another instance is archiving now; try again later');
          if (err instanceof AuditArchiveRefused) throw new OperatorError(err.message);
          throw err;
        }
        if (!result.dryRun && result.segments.length > 0) {
          // Seal the audit.archived records now, so a verify right after this command can trust the
          // checkpoint (a running server's sequencer does it otherwise, holding the lease: then this seals nothing).
          const { Sequencer } = await import('../audit/sequencer.js');
          await new Sequencer({ store, clock: systemClock, keys }).sealAll();
        }
        if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          const verb = result.dryRun ? 'would archive' : 'archived';
          for (const s of result.segments)
            process.stdout.write(
              `${verb} ${s.name}: leaves ${s.firstLeaf}–${s.endLeaf - 1}, ${s.events} events, ${s.firstTime} … ${s.lastTime}\n`,
            );
          process.stdout.write(
            result.segments.length === 0
              ? `nothing to archive before ${before.toISOString()}\n`
              : `${verb} ${result.segments.reduce((n, s) => n + s.events, 0)} events to ${result.destination}${
                  result.dryRun ? '' : `; the database now starts at leaf ${result.prunedBelow}`
                }\n`,
          );
        }
      });
    });

  audit
    .command('public-key')
    .description('print the Ed25519 public key (PEM) that signs audit tree heads')
    .option(...configOption)
    .action(async (opts: { config?: string }) => {
      await withStore(opts.config, async (store, config) => {
        process.stdout.write((await (await auditKeys(store, config)).current()).publicKeyPem);
      });
    });

  audit
    .command('check-proof')
    .description(
      'check an inclusion or consistency proof offline, with only the public key (no config, no database)',
    )
    .argument('<proof>', 'a file written by `ferry audit prove` or `ferry audit consistency` (- for stdin)')
    .requiredOption('--public-key <file>', 'the Ed25519 public key (PEM) from `ferry audit public-key`')
    .action(async (file: string, opts: { publicKey: string }) => {
      const { readFileSync } = await import('node:fs');
      const { checkProofFile } = await import('../audit/tree-head.js');
      let proof: unknown;
      try {
        proof = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
      } catch (err) {
        throw new OperatorError(`cannot read the proof ${file}: ${(err as Error).message}`);
      }
      const problem = checkProofFile(proof, readFileSync(opts.publicKey, 'utf8'));
      if (problem) {
        process.stdout.write(`proof does NOT hold: ${problem}\n`);
        process.exitCode = 1;
      } else process.stdout.write('proof holds\n');
    });
}

/** --before: an ISO-8601 time or an age (90m, 24h, 400d) before now. */
function parseBefore(value: string, now: Date): Date {
  const age = /^(\d+)([mhd])$/.exec(value.trim());
  if (age) {
    const ms = Number(age[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - ms);
  }
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new OperatorError(`--before expects an ISO-8601 time or an age like 400d (got ${value})`);
  return new Date(t);
}

/**
 * The leaf of an event to prove from the archive: --leaf, or the event's own row while the database
 * still has it. Pruned events are not indexed by id (that index would keep a row per archived event),
 * so their leaf comes from where the id was read (every listing and export carries leafIndex).
 */
async function archivedLeafOf(store: Store, eventId: string, leaf: string | undefined): Promise<number> {
  if (leaf !== undefined) {
    if (!/^\d{1,15}$/.test(leaf)) throw new OperatorError(`--leaf expects a leaf index (got ${leaf})`);
    return Number(leaf);
  }
  const row = await store.db
    .selectFrom('audit_events')
    .select('leaf_index')
    .where('id', '=', eventId)
    .executeTakeFirst();
  if (row?.leaf_index != null) return Number(row.leaf_index);
  throw new OperatorError(
    `audit event ${eventId} is no longer in the database: add --leaf N, its leafIndex (in ferry audit export, the API or your SIEM's record), so only the segment holding it is read`,
  );
}

/** An archive named on the command line: s3://bucket/prefix/ or a directory. */
async function archiveAt(location: string, config: Config) {
  const { fileArchive } = await import('../audit/archive.js');
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!s3) return fileArchive(resolve(location));
  const { s3Archive } = await import('../aws/audit-heads-s3.js');
  const { systemClock } = await import('../clock.js');
  const prefix = s3[2] === '' || s3[2]!.endsWith('/') ? s3[2]! : `${s3[2]}/`;
  const d = config.audit.retention.destination;
  return s3Archive(
    {
      bucket: s3[1]!,
      prefix,
      retainDays: 0,
      region: (d?.type === 's3' ? d.region : undefined) ?? config.aws.region,
      endpoint: (d?.type === 's3' ? d.endpoint : undefined) ?? config.aws.endpoint,
      credentials:
        config.aws.accessKeyId && config.aws.secretAccessKey
          ? { accessKeyId: config.aws.accessKeyId, secretAccessKey: config.aws.secretAccessKey }
          : undefined,
    },
    systemClock,
  );
}

async function trustedKeys(store: Store, config: Config, publicKeyFile: string | undefined) {
  const { createPublicKey } = await import('node:crypto');
  if (publicKeyFile) {
    const { readFileSync } = await import('node:fs');
    const { auditKeyId } = await import('../keys/audit-signing-keys.js');
    const key = createPublicKey(readFileSync(publicKeyFile, 'utf8'));
    return new Map([[auditKeyId(key), key]]);
  }
  return (await auditKeys(store, config)).trusted();
}

async function auditKeys(store: Store, config: Config) {
  const { AuditSigningKeys } = await import('../keys/audit-signing-keys.js');
  const { loadMasterKey } = await import('./master-key.js');
  const { systemClock } = await import('../clock.js');
  return new AuditSigningKeys(store, systemClock, loadMasterKey(config, 'configuration'));
}

/** A missing event or head is the operator's mistake: say so, exit 2. */
async function ledgerCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as Error).name === 'LedgerNotFound') throw new OperatorError((err as Error).message);
    throw err;
  }
}

/** An operator mistake: printed without a stack trace, exit status 2. */
export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorError';
  }
}

/**
 * The config, refusing to go on in a directory that is not a Ferry installation: no ferry.yaml (nor
 * --config, FERRY_CONFIG or FERRY_DATABASE_URL) and no database at the default path. An operator
 * command there would otherwise create an empty database under ./data and work on it.
 */
async function configuredOrRefuse(configFlag: string | undefined): Promise<{ config: Config }> {
  const { config, path } = (await lazy.config()).loadConfig(configFlag);
  const url = config.database.url;
  if (
    path === null &&
    !process.env.FERRY_DATABASE_URL &&
    url.startsWith('sqlite:') &&
    !existsSync(url.slice('sqlite:'.length))
  ) {
    throw new OperatorError(
      `no ferry.yaml in ${process.cwd()} and no database at ${url.slice('sqlite:'.length)}: run this where ferry.yaml is, pass --config PATH or set FERRY_CONFIG (ferry init creates one)`,
    );
  }
  return { config };
}

async function withStore(
  configFlag: string | undefined,
  fn: (store: Store, config: Config) => Promise<void>,
): Promise<void> {
  const { config } = await configuredOrRefuse(configFlag);
  const store = (await lazy.store()).openStore(config.database.url, { poolSize: 2 });
  try {
    await fn(store, config);
  } finally {
    await store.close();
  }
}
