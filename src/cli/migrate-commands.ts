import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { parseAuthorizationDetails } from '../migrate/auth-details.js';
import { parseCredentialReport } from '../migrate/credential-report.js';
import { type AccountInventory, accountIdOf, buildInventory, rolePolicies } from '../migrate/inventory.js';
import { LIVE_STEPS, type LiveSource, readLiveAccount, readLiveRole } from '../migrate/live.js';
import { buildPlan, type MigrationPlan, type MigrationState } from '../migrate/plan.js';
import { htmlReport } from '../migrate/report-html.js';
import { markdownReport } from '../migrate/report-markdown.js';
import { type SimulationOutcome, simulate } from '../migrate/simulate.js';
import {
  countByState,
  detectRemoved,
  type MigrationStateFile,
  mark,
  parseState,
  stateFromPlan,
} from '../migrate/state.js';
import { tenantYaml } from '../migrate/tenant-file.js';
import { collect, UsageError } from './context.js';
import { type Inert, json, note, out, printJson, progressBar, t, table } from './output.js';

/**
 * `ferry migrate …` and `ferry access simulate`. These work on files and on AWS directly, not on a Ferry
 * server: the inventory is the operator's, the output is files to review before `ferry apply`.
 */
export function registerMigrateCommands(program: Command): void {
  const migrate = program
    .command('migrate')
    .description('plan the move off IAM users (inventory, findings, roles, checklist)');
  migrate
    .command('plan')
    .description(
      'inventory IAM, report findings, propose groups and roles, write the tenant file and the checklist',
    )
    .option(
      '--input <file>',
      'output of `aws iam get-account-authorization-details` (repeat for more accounts)',
      collect,
      [],
    )
    .option(
      '--credential-report <file>',
      'CSV or `aws iam get-credential-report` JSON, in the order of --input',
      collect,
      [],
    )
    .option('--account-alias <alias>', 'a name for each --input account, e.g. Account1', collect, [])
    .option('--live', 'read the accounts through the AWS SDK instead of files')
    .option('--profile <profile>', 'with --live: an AWS profile per account (repeat)', collect, [])
    .option('--endpoint-url <url>', 'with --live: an IAM/STS endpoint (moto)')
    .option('--out <file>', 'report.html, report.md or report.json (repeat for several)', collect, [])
    .option('--tenant-out <file>', 'write the proposed tenant file (YAML) for `ferry apply`')
    .option(
      '--state <file>',
      'the checklist state file (default: migration-state.json beside the first --out)',
    )
    .option('--saml-provider <name>', "the name of Ferry's SAML provider in each account", 'Ferry')
    .option('--as-of <date>', 'the report date findings are measured from (default: now)')
    .action(async (opts: PlanOptions) => {
      checkPlanUsage(opts);
      refuseToOverwriteInputs(opts);
      const asOf = opts.asOf ? parseDate(opts.asOf) : systemClock.now();
      const inventories = opts.live ? await readLive(opts) : readFiles(opts);
      const plan = await buildPlan(inventories, { asOf, samlProviderName: opts.samlProvider });
      const statePath = opts.state ?? join(opts.out[0] ? dirname(opts.out[0]) : '.', 'migration-state.json');
      const previous = existsSync(statePath) ? parseState(readJson(statePath)) : null;
      const state = stateFromPlan(plan, previous, asOf);
      const states = stateMap(state);
      // Render everything before writing anything, so a bad --out leaves no half-written state.
      const rendered = opts.out.map((out) => [out, render(plan, out, states)] as const);
      writeFileSync(statePath, `${JSON.stringify(state, null, 2)}\n`);
      for (const [out, text] of rendered) writeFileSync(out, text);
      if (opts.tenantOut) writeFileSync(opts.tenantOut, tenantYaml(plan));
      const bySeverity: Record<string, number> = {};
      for (const f of plan.findings) bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + 1;
      out(
        t`${plan.accounts.map((a) => t`account ${a.alias} (${a.accountId}): ${a.inventory.users.length} users, ${a.inventory.groups.length} groups, ${a.inventory.roles.length} roles → ${a.roles.length} proposed roles\n`)}findings: ${
          Object.entries(bySeverity)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ') || 'none'
        }\n${[...opts.out, ...(opts.tenantOut ? [opts.tenantOut] : []), statePath].map((f) => t`wrote ${f}\n`)}`,
      );
    });

  migrate
    .command('status')
    .description('the per-user checklist: mapped → signed in through Ferry → IAM user removed')
    .option('--state <file>', 'the state file `ferry migrate plan` wrote', 'migration-state.json')
    .argument('[step]', 'with --mark: signed-in or removed')
    .option('--mark <user>', 'record a step for USER (or ACCOUNT/USER): `--mark USER signed-in|removed`')
    .option(
      '--input <file>',
      'a fresh get-account-authorization-details: users gone from it are marked removed',
    )
    .option('--as-of <date>', 'the date to record (default: now)')
    .option('--json', 'print JSON')
    .action(
      async (
        step: string | undefined,
        opts: { state: string; mark?: string; input?: string; asOf?: string; json?: boolean },
      ) => {
        const at = opts.asOf ? parseDate(opts.asOf) : systemClock.now();
        if (opts.mark !== undefined && step !== 'signed-in' && step !== 'removed')
          throw new UsageError(
            `--mark needs a user and a state: --mark USER signed-in|removed${step ? ` (got ${step})` : ''}`,
          );
        if (opts.mark === undefined && step !== undefined)
          throw new UsageError(`${step}: a state is given only with --mark USER`);
        const state = parseState(readJson(opts.state));
        let changed = false;
        if (opts.mark !== undefined && step !== undefined) {
          const u = mark(state, opts.mark, step, at);
          note(t`${u.account}/${u.user}: ${u.state}\n`);
          changed = true;
        }
        if (opts.input) {
          const details = parseAuthorizationDetails(readJson(opts.input));
          const inv = buildInventory({ details });
          for (const name of detectRemoved(state, inv, at))
            note(t`${inv.accountId}/${name}: removed (gone from ${opts.input})\n`);
          changed = true;
        }
        if (changed) writeFileSync(opts.state, `${JSON.stringify(state, null, 2)}\n`);
        if (opts.json) return printJson(state.users);
        out(
          table(
            state.users.map((u) => ({ ...u, groups: u.directoryGroups })),
            ['account', 'user', 'kind', 'groups', 'state'],
          ),
        );
        const counts = countByState(state.users);
        out(
          t`${Object.entries(counts)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ')}\n`,
        );
      },
    );

  const access =
    program.commands.find((c) => c.name() === 'access') ??
    program.command('access').description('access questions');
  access
    .command('simulate')
    .description(
      "would this role be allowed this action? (IAM's evaluation by iam-simulate; exit 0 allowed, 1 denied)",
    )
    .requiredOption('--role <role>', 'the role name (a role in the export, or a proposed role in a plan)')
    .requiredOption('--action <action>', 'e.g. s3:PutObject')
    .option('--resource <arn>', 'the resource ARN', '*')
    .option('--account <account>', 'account id (or alias, with a plan)')
    .option(
      '--context <key=value>',
      'a condition key value, e.g. aws:SourceIp=10.0.0.1 (repeat)',
      collect,
      [],
    )
    .option(
      '--input <file>',
      'get-account-authorization-details output, or a plan JSON from `ferry migrate plan`',
    )
    .option('--live', "read the role's policies from IAM through the AWS SDK")
    .option('--profile <profile>', 'with --live: the AWS profile')
    .option('--endpoint-url <url>', 'with --live: an IAM/STS endpoint (moto)')
    .option('--json', 'print JSON')
    .action(async (opts: SimulateOptions) => {
      // The command line is checked whole before any file or AWS is read.
      if (opts.live && opts.input) throw new UsageError('--input and --live exclude each other');
      if (!opts.live && !opts.input)
        throw new UsageError('give --input (auth details or a plan JSON) or --live');
      const context = Object.fromEntries(
        opts.context.map((kv) => {
          const i = kv.indexOf('=');
          if (i <= 0) throw new UsageError(`--context takes key=value (got ${kv})`);
          return [kv.slice(0, i), kv.slice(i + 1)];
        }),
      );
      const { principalArn, policies } = await roleUnderTest(opts);
      const outcome = await simulate(policies, {
        principalArn,
        action: opts.action,
        resource: opts.resource,
        context,
      });
      if (opts.json)
        printJson({ role: principalArn, action: opts.action, resource: opts.resource, ...outcome });
      else out(describe(outcome, principalArn, opts));
      process.exitCode = outcome.allowed ? 0 : 1;
    });
}

interface PlanOptions {
  input: string[];
  credentialReport: string[];
  accountAlias: string[];
  live?: boolean;
  profile: string[];
  endpointUrl?: string;
  out: string[];
  tenantOut?: string;
  state?: string;
  samlProvider: string;
  asOf?: string;
}

interface SimulateOptions {
  role: string;
  action: string;
  resource: string;
  account?: string;
  context: string[];
  input?: string;
  live?: boolean;
  profile?: string;
  endpointUrl?: string;
  json?: boolean;
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${file}: not JSON`);
  }
}

function parseDate(text: string): Date {
  const d = new Date(text);
  if (Number.isNaN(d.getTime()))
    throw new UsageError(`--as-of takes a date such as 2026-06-30 (got ${text})`);
  return d;
}

/** What the command line alone can tell is wrong (exit 2), before anything is read or written. */
function checkPlanUsage(opts: PlanOptions): void {
  if (opts.live && opts.input.length > 0) throw new UsageError('--input and --live exclude each other');
  if (!opts.live && opts.input.length === 0)
    throw new UsageError('give --input auth-details.json (or --live)');
  if (opts.credentialReport.length > opts.input.length)
    throw new UsageError('more --credential-report files than --input files');
  if (opts.asOf) parseDate(opts.asOf);
  for (const file of opts.out)
    if (!REPORT_EXTENSIONS.includes(extname(file).toLowerCase()))
      throw new UsageError(`--out ${file}: the extension must be .html, .md or .json`);
}

const REPORT_EXTENSIONS = ['.html', '.htm', '.md', '.json'];

function readFiles(opts: PlanOptions): AccountInventory[] {
  return opts.input.map((file, i) => {
    const details = parseAuthorizationDetails(readJson(file));
    const reportFile = opts.credentialReport[i];
    return buildInventory({
      details,
      ...(reportFile ? { credentialReport: parseCredentialReport(readFileSync(reportFile, 'utf8')) } : {}),
      alias: opts.accountAlias[i] ?? null,
    });
  });
}

async function readLive(opts: PlanOptions): Promise<AccountInventory[]> {
  const sources: LiveSource[] = (opts.profile.length ? opts.profile : [undefined]).map((profile) => ({
    ...(profile ? { profile } : {}),
    ...(opts.endpointUrl ? { endpoint: opts.endpointUrl } : {}),
  }));
  const bar = progressBar(sources.length * LIVE_STEPS);
  const out: AccountInventory[] = [];
  try {
    for (const [i, source] of sources.entries()) {
      const inv = await readLiveAccount(source, (step) =>
        bar.tick(`${source.profile ?? 'default'}: ${step}`),
      );
      if (opts.accountAlias[i]) inv.alias = opts.accountAlias[i]!;
      out.push(inv);
    }
  } finally {
    bar.end();
  }
  return out;
}

function render(plan: MigrationPlan, file: string, states: Map<string, MigrationState>): string {
  switch (extname(file).toLowerCase()) {
    case '.html':
    case '.htm':
      return htmlReport(plan, states);
    case '.md':
      return markdownReport(plan, states);
    case '.json':
      return `${JSON.stringify(plan, null, 2)}\n`;
    default:
      throw new Error(`--out ${file}: the extension must be .html, .md or .json`);
  }
}

function stateMap(state: MigrationStateFile): Map<string, MigrationState> {
  return new Map(state.users.map((u) => [`${u.account}/${u.user}`, u.state]));
}

async function roleUnderTest(
  opts: SimulateOptions,
): Promise<{ principalArn: string; policies: Array<{ name: string; policy: { Statement: unknown } }> }> {
  if (opts.live) {
    const r = await readLiveRole(
      {
        ...(opts.profile ? { profile: opts.profile } : {}),
        ...(opts.endpointUrl ? { endpoint: opts.endpointUrl } : {}),
      },
      opts.role,
    );
    if (opts.account && opts.account !== r.accountId)
      throw new Error(`the AWS credentials in use are for account ${r.accountId}, not ${opts.account}`);
    return { principalArn: r.roleArn, policies: r.policies };
  }
  if (!opts.input) throw new UsageError('give --input (auth details or a plan JSON) or --live');
  const doc = readJson(opts.input) as Record<string, unknown>;
  if (doc.kind === 'ferry-migration-plan') {
    const plan = doc as unknown as MigrationPlan;
    const accounts = plan.accounts.filter(
      (a) =>
        !opts.account || a.accountId === opts.account || a.alias.toLowerCase() === opts.account.toLowerCase(),
    );
    if (accounts.length !== 1)
      throw opts.account
        ? new Error(`the plan has no account ${opts.account}`)
        : new UsageError('the plan has several accounts: give --account');
    const a = accounts[0]!;
    const role = a.roles.find((r) => r.name.toLowerCase() === opts.role.toLowerCase());
    if (!role)
      throw new Error(
        `the plan proposes no role ${opts.role} in ${a.alias} (it has: ${a.roles.map((r) => r.name).join(', ') || 'none'})`,
      );
    return {
      principalArn: `arn:${a.partition}:iam::${a.accountId}:role/${role.name}`,
      policies: role.documents,
    };
  }
  const details = parseAuthorizationDetails(doc);
  const accountId = accountIdOf(details);
  if (opts.account && accountId && opts.account !== accountId)
    throw new Error(`${opts.input} is account ${accountId}, not ${opts.account}`);
  const role = details.RoleDetailList.find((r) => r.RoleName === opts.role);
  if (!role) throw new Error(`${opts.input} has no role ${opts.role}`);
  const { policies, missing } = rolePolicies(details, role.RoleName);
  if (missing.length) note(t`warning: no document in the export for ${missing.join(', ')}: not evaluated\n`);
  return { principalArn: role.Arn, policies };
}

/** An output that is also an input would replace the export it was made from (docs/migrate.md once did). */
function refuseToOverwriteInputs(opts: PlanOptions): void {
  const key = (file: string) => {
    const path = resolve(file);
    try {
      return realpathSync(path);
    } catch {
      return path; // not there yet: an output that does not exist cannot be an input
    }
  };
  const inputs = new Map([...opts.input, ...opts.credentialReport].map((f) => [key(f), f]));
  const outputs = [
    ...opts.out,
    ...(opts.tenantOut ? [opts.tenantOut] : []),
    ...(opts.state ? [opts.state] : []),
  ];
  for (const out of outputs) {
    const input = inputs.get(key(out));
    if (input !== undefined) {
      throw new UsageError(`${out} is also an input (${input}); write the report to another file`);
    }
  }
}

function describe(o: SimulationOutcome, principalArn: string, opts: SimulateOptions): Inert {
  const head = t`${o.allowed ? 'allowed' : 'denied'}: ${opts.action} on ${opts.resource} for ${principalArn}`;
  if (o.deciding.length === 0)
    return t`${head}\n  ${o.allowed ? '' : 'implicitly: no statement allows it'}\n`;
  return t`${head}\n${o.deciding.map(
    (d) =>
      t`  ${d.effect} by ${d.policy} statement ${d.statementIndex}${d.sid ? t` (Sid ${d.sid})` : ''}: ${json(d.statement ?? {})}\n`,
  )}`;
}
