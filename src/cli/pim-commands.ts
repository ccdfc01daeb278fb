import type { Command } from 'commander';
import { parseDuration } from '../duration.js';
import { ApiError, type FerryClient } from './client.js';
import { callerClientOf, clientOf, collect, enc, type GlobalOptions } from './context.js';
import { type Inert, note, out, printJson, t, table } from './output.js';

/** As the server answers /api/v1/pim/activations. */
interface Activation {
  id: string;
  state: string;
  userName: string;
  target: string;
  durationSeconds: number;
  justification: string | null;
  ticket: string | null;
  approvalsRequired: number;
  approvals: Array<{ userName: string }>;
  requestedAt: string;
  answerBy: string;
  expiresAt: string | null;
  endReason: string | null;
  /** 0024: an Identity Center account assignment or group membership, as the workers last found it */
  effect?: { state: string; detail: string | null } | null;
  /** 0024: what happens to sessions already open when it ends */
  openSessions?: string;
}

function durationSeconds(text: string): number {
  const ms = parseDuration(text);
  if (ms === null || ms < 1000) throw new Error(`expected a duration such as 1h, 30m or 1h30m (got ${text})`);
  return Math.round(ms / 1000);
}

/** An admin token (--token, $FERRY_TOKEN) when one is given, else the signed-in person. */
function adminOrCallerClientOf(cmd: Command): FerryClient {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  return g.token || process.env.FERRY_TOKEN ? clientOf(cmd) : callerClientOf(cmd);
}

const rows = (items: Activation[]) =>
  items.map((a) => ({
    ...a,
    approvals: `${a.approvals.length}/${a.approvalsRequired}`,
    duration: `${Math.round(a.durationSeconds / 60)}m`,
    until: a.expiresAt ?? (a.state === 'requested' ? `answer by ${a.answerBy}` : ''),
  }));

function summary(a: Activation): Inert {
  switch (a.state) {
    case 'requested':
      return t`Activation ${a.id} requested: ${a.target} for ${Math.round(a.durationSeconds / 60)} min, waiting for approval (${a.approvals.length} of ${a.approvalsRequired}, answer by ${a.answerBy})\n`;
    case 'active':
      return t`Activation ${a.id} is active: ${a.target} until ${a.expiresAt}\n${effectLines(a)}`;
    default:
      return t`Activation ${a.id} is ${a.state}${a.endReason ? t`: ${a.endReason}` : ''}\n${effectLines(a)}`;
  }
}

/** What was done outside Ferry (assignment, membership) and, plainly, what ends when it ends. */
function effectLines(a: Activation): Inert {
  const effect = a.effect
    ? t`  ${a.effect.state === 'pending' || a.effect.state === 'applying' ? 'being applied' : a.effect.state}${a.effect.detail ? t`: ${a.effect.detail}` : ''}${a.effect.state === 'pending' ? t` (see \`ferry activations show ${a.id}\`)` : ''}\n`
    : '';
  const sessions = a.state === 'active' && a.openSessions ? t`  note: ${a.openSessions}\n` : '';
  return t`${effect}${sessions}`;
}

/** The step-up answer tells the person what to do; print it with the error. */
async function explainStepUp<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ApiError && err.problem?.type?.endsWith('/step-up-required')) {
      const hint = (err.problem as { hint?: string }).hint;
      if (hint) note(t`hint: ${hint}\n`);
    }
    throw err;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Just-in-time elevation: request, approve, deny, list and revoke activations; manage eligibility. */
export function registerPimCommands(program: Command): void {
  program
    .command('request')
    .description(
      'request to activate a role, permission set, group membership or SSH login you are eligible for (just-in-time elevation)',
    )
    .option('--account <account>', 'AWS account id or alias (with --role)')
    .option('--role <role>', 'IAM role name')
    .option(
      '--target <target>',
      'instead of --account/--role: aws:<account>/permission-set/<name>, group:<name> or ssh:<login>@<host>',
    )
    .requiredOption('--duration <duration>', 'how long, e.g. 1h or 30m')
    .option('--reason <text>', 'the justification approvers and the audit trail see')
    .option('--ticket <id>', 'a ticket or change number')
    .option('--wait', 'wait until the request is answered; exit 0 only when it became active')
    .option('--poll <duration>', 'with --wait: how often to look', '2s')
    .option('--json', 'print the activation as JSON')
    .action(async function (
      this: Command,
      opts: {
        account?: string;
        role?: string;
        target?: string;
        duration: string;
        reason?: string;
        ticket?: string;
        wait?: boolean;
        poll: string;
        json?: boolean;
      },
    ) {
      const client = callerClientOf(this);
      let a = await explainStepUp(() =>
        client.request<Activation>('POST', '/api/v1/pim/activations', {
          ...(opts.target !== undefined
            ? { target: opts.target }
            : { account: opts.account, role: opts.role }),
          durationSeconds: durationSeconds(opts.duration),
          ...(opts.reason !== undefined ? { justification: opts.reason } : {}),
          ...(opts.ticket !== undefined ? { ticket: opts.ticket } : {}),
        }),
      );
      if (opts.wait) {
        if (!opts.json) note(summary(a));
        const every = durationSeconds(opts.poll) * 1000;
        while (a.state === 'requested' || a.state === 'approved') {
          await sleep(every);
          a = await client.get<Activation>(`/api/v1/pim/activations/${enc(a.id)}`);
        }
        if (a.state !== 'active') process.exitCode = 1;
      }
      if (opts.json) return printJson(a);
      out(summary(a));
    });

  for (const verb of ['approve', 'deny'] as const) {
    program
      .command(`${verb} <id>`)
      .description(`${verb} an activation request waiting for you`)
      .option('--reason <text>', 'why, for the requester and the audit trail')
      .option('--json', 'print the activation as JSON')
      .action(async function (this: Command, id: string, opts: { reason?: string; json?: boolean }) {
        const a = await callerClientOf(this).request<Activation>(
          'POST',
          `/api/v1/pim/activations/${enc(id)}/${verb}`,
          opts.reason !== undefined ? { reason: opts.reason } : {},
        );
        if (opts.json) return printJson(a);
        out(summary(a));
      });
  }

  const activations = program
    .command('activations')
    .description(
      'your activations (--mine, the default), those waiting for you (--pending); all with an admin token',
    )
    .option('--mine', 'your own requests and activations')
    .option('--pending', 'requests waiting for your approval')
    .option('--state <state>', 'only this state (requested, active, expired, …)')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: { mine?: boolean; pending?: boolean; state?: string; json?: boolean },
    ) {
      const q = new URLSearchParams();
      if (opts.pending) q.set('pending', 'true');
      else if (opts.mine) q.set('mine', 'true');
      if (opts.state) q.set('state', opts.state);
      const client = opts.mine || opts.pending ? callerClientOf(this) : adminOrCallerClientOf(this);
      const res = await client.get<{ items: Activation[] }>(
        `/api/v1/pim/activations${q.size ? `?${q}` : ''}`,
      );
      if (opts.json) return printJson(res.items);
      out(
        table(rows(res.items), [
          'id',
          'state',
          'userName',
          'target',
          'duration',
          'approvals',
          'until',
          'justification',
        ]),
      );
    });
  activations
    .command('show <id>')
    .description('one activation')
    .option('--json', 'print JSON')
    .action(async function (this: Command, id: string) {
      // --json also names the parent's option: commander gives it to `activations`, so read both.
      const opts = this.optsWithGlobals<{ json?: boolean }>();
      const a = await adminOrCallerClientOf(this).get<Activation>(`/api/v1/pim/activations/${enc(id)}`);
      if (opts.json) return printJson(a);
      out(summary(a));
    });
  for (const verb of ['revoke', 'cancel'] as const) {
    activations
      .command(`${verb} <id>`)
      .description(
        verb === 'revoke'
          ? 'end an active activation now (yours, one you approve, or any with an admin token); its AWS sessions are revoked'
          : 'withdraw your request before it is active',
      )
      .option('--reason <text>', 'why, for the audit trail')
      .option('--json', 'print the activation as JSON')
      .action(async function (this: Command, id: string) {
        const opts = this.optsWithGlobals<{ reason?: string; json?: boolean }>();
        const client = verb === 'revoke' ? adminOrCallerClientOf(this) : callerClientOf(this);
        const a = await client.request<Activation>(
          'POST',
          `/api/v1/pim/activations/${enc(id)}/${verb}`,
          opts.reason !== undefined ? { reason: opts.reason } : {},
        );
        if (opts.json) return printJson(a);
        out(summary(a));
      });
  }

  program
    .command('eligible')
    .description('the roles you may activate with `ferry request`, and their rules')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await callerClientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        '/api/v1/pim/eligible',
      );
      if (opts.json) return printJson(res.items);
      out(table(res.items.map(eligibilityRow), ELIGIBILITY_COLUMNS));
    });

  const eligibility = program
    .command('eligibility')
    .description('eligible assignments: who may activate which role (admin)');
  eligibility
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<Record<string, unknown>> }>(
        '/api/v1/pim/eligibilities',
      );
      if (opts.json) return printJson(res.items);
      out(table(res.items.map(eligibilityRow), ['id', ...ELIGIBILITY_COLUMNS]));
    });
  eligibility
    .command('add')
    .description('make a group or user eligible for a role (replaces the rules of an existing one)')
    .option('--group <name>', 'the eligible group')
    .option('--user <userName>', 'the eligible user')
    .option('--account <account>', 'AWS account id or alias (with --role)')
    .option('--role <role>', 'IAM role name')
    .option(
      '--target <target>',
      'instead of --account/--role: aws:<account>/permission-set/<name>, group:<name> or ssh:<login>@<host or glob>',
    )
    .requiredOption('--max-duration <duration>', 'the longest activation, e.g. 1h')
    .option('--require-justification', 'a request must say why')
    .option('--require-ticket', 'a request must name a ticket')
    .option('--require-mfa', "the requester's sign-in must include a second factor")
    .option('--approver-group <name>', 'members may approve (repeatable)', collect, [])
    .option('--approver-user <userName>', 'may approve (repeatable)', collect, [])
    .option('--approvals <n>', 'how many distinct approvers must approve', (v) => Number.parseInt(v, 10))
    .option('--auto-approve-max <duration>', 'approve without anyone when the request is at most this long')
    .option(
      '--auto-approve-group <name>',
      'approve without anyone when the requester is in this group (repeatable)',
      collect,
      [],
    )
    .option('--auto-approve-with-ticket', 'approve without anyone when the request names a ticket')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: {
        group?: string;
        user?: string;
        account?: string;
        role?: string;
        target?: string;
        maxDuration: string;
        requireJustification?: boolean;
        requireTicket?: boolean;
        requireMfa?: boolean;
        approverGroup: string[];
        approverUser: string[];
        approvals?: number;
        autoApproveMax?: string;
        autoApproveGroup: string[];
        autoApproveWithTicket?: boolean;
        json?: boolean;
      },
    ) {
      const auto =
        opts.autoApproveMax || opts.autoApproveGroup.length || opts.autoApproveWithTicket
          ? {
              ...(opts.autoApproveMax ? { maxDuration: durationSeconds(opts.autoApproveMax) } : {}),
              ...(opts.autoApproveGroup.length ? { requesterGroups: opts.autoApproveGroup } : {}),
              ...(opts.autoApproveWithTicket ? { withTicket: true } : {}),
            }
          : null;
      const e = await clientOf(this).request<Record<string, unknown>>('POST', '/api/v1/pim/eligibilities', {
        ...(opts.group !== undefined ? { group: opts.group } : {}),
        ...(opts.user !== undefined ? { user: opts.user } : {}),
        ...(opts.target !== undefined ? { target: opts.target } : { account: opts.account, role: opts.role }),
        maxDuration: durationSeconds(opts.maxDuration),
        requireJustification: opts.requireJustification ?? false,
        requireTicket: opts.requireTicket ?? false,
        requireMfa: opts.requireMfa ?? false,
        approverGroups: opts.approverGroup,
        approverUsers: opts.approverUser,
        ...(opts.approvals !== undefined ? { approvalsRequired: opts.approvals } : {}),
        autoApprove: auto,
      });
      if (opts.json) return printJson(e);
      out(t`eligibility ${e.id}: ${opts.group ?? opts.user} may activate ${e.target}\n`);
    });
  eligibility.command('remove <id>').action(async function (this: Command, id: string) {
    await clientOf(this).request('DELETE', `/api/v1/pim/eligibilities/${enc(id)}`);
    out(t`removed eligibility ${id}\n`);
  });
}

const ELIGIBILITY_COLUMNS = ['principal', 'target', 'maxDuration', 'requires', 'approvers'];
function eligibilityRow(e: Record<string, unknown>) {
  const approvers = (e.approvers as Array<{ type: string; name: string }>) ?? [];
  const requires = [
    e.requireJustification ? 'justification' : '',
    e.requireTicket ? 'ticket' : '',
    e.requireMfa ? 'mfa' : '',
  ].filter(Boolean);
  return {
    ...e,
    principal: `${e.principalType}:${e.principalName ?? e.principalId}`,
    maxDuration: `${Math.round(Number(e.maxDuration) / 60)}m`,
    requires: requires.join(','),
    approvers: approvers.length
      ? `${e.approvalsRequired} of ${approvers.map((a) => `${a.type}:${a.name}`).join(',')}`
      : 'none',
  };
}
