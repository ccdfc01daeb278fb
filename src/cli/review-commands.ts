import type { Command } from 'commander';
import type { FerryClient } from './client.js';
import { callerClientOf, clientOf, collect, enc, type GlobalOptions } from './context.js';
import { out, printJson, t, table } from './output.js';

interface Campaign {
  id: string;
  name: string;
  state: string;
  deadline: string;
  removeUnreviewed: boolean;
  progress: { total: number; approved: number; denied: number; unreviewed: number; removed: number };
}
interface Item {
  id: string;
  kind: string;
  label: string;
  decision: string | null;
  decidedBy: string | null;
  outcome: string | null;
}

/** An admin token (--token, $FERRY_TOKEN) when one is given, else the signed-in reviewer. */
function adminOrCallerClientOf(cmd: Command): FerryClient {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  return g.token || process.env.FERRY_TOKEN ? clientOf(cmd) : callerClientOf(cmd);
}

const progressOf = (c: Campaign) =>
  `${c.progress.approved} approved, ${c.progress.denied} denied, ${c.progress.unreviewed} not reviewed of ${c.progress.total}` +
  (c.state === 'closed' ? `; ${c.progress.removed} removed` : '');

/** Access reviews: admins start and close campaigns; reviewers (signed in) decide items. */
export function registerReviewCommands(program: Command): void {
  const reviews = program
    .command('reviews')
    .description('access review campaigns over memberships and eligibilities');
  reviews
    .command('create')
    .description('start a campaign (admin token)')
    .requiredOption('--name <name>', 'what the reviewers see')
    .option('--group <name>', 'review the members of this group (repeatable)', collect, [])
    .option('--eligibilities', 'review every eligible assignment (PIM)')
    .option('--reviewer-group <name>', 'members may review (repeatable)', collect, [])
    .option('--reviewer-user <userName>', 'may review (repeatable)', collect, [])
    .requiredOption('--deadline <when>', 'an ISO-8601 time or a duration from now such as 14d')
    .option('--remove-unreviewed', 'at the deadline also remove what nobody reviewed (default: keep it)')
    .option('--json', 'print the campaign as JSON')
    .action(async function (
      this: Command,
      opts: {
        name: string;
        group: string[];
        eligibilities?: boolean;
        reviewerGroup: string[];
        reviewerUser: string[];
        deadline: string;
        removeUnreviewed?: boolean;
        json?: boolean;
      },
    ) {
      const c = await clientOf(this).request<Campaign>('POST', '/api/v1/reviews', {
        name: opts.name,
        groups: opts.group,
        eligibilities: opts.eligibilities ?? false,
        reviewerGroups: opts.reviewerGroup,
        reviewerUsers: opts.reviewerUser,
        deadline: opts.deadline,
        removeUnreviewed: opts.removeUnreviewed ?? false,
      });
      if (opts.json) return printJson(c);
      out(t`review ${c.id} (${c.name}): ${c.progress.total} items, deadline ${c.deadline}\n`);
    });
  reviews
    .command('list')
    .description('campaigns (those you review; all with an admin token)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await adminOrCallerClientOf(this).get<{ items: Campaign[] }>('/api/v1/reviews');
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((c) => ({ ...c, progress: progressOf(c) })),
          ['id', 'name', 'state', 'deadline', 'progress'],
        ),
      );
    });
  reviews
    .command('show <id>')
    .description("a campaign's progress and items")
    .option('--json', 'print JSON ({campaign fields…, items})')
    .action(async function (this: Command, id: string, opts: { json?: boolean }) {
      const client = adminOrCallerClientOf(this);
      const c = await client.get<Campaign>(`/api/v1/reviews/${enc(id)}`);
      const { items } = await client.get<{ items: Item[] }>(`/api/v1/reviews/${enc(id)}/items`);
      if (opts.json) return printJson({ ...c, items });
      out(t`${c.name} (${c.state}, deadline ${c.deadline}): ${progressOf(c)}\n`);
      out(
        table(
          items.map((i) => ({ ...i })),
          ['id', 'kind', 'label', 'decision', 'decidedBy', 'outcome'],
        ),
      );
    });
  reviews
    .command('decide <id> <item> <decision>')
    .description('approve or deny one item (as the signed-in reviewer)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'print the item as JSON')
    .action(async function (
      this: Command,
      id: string,
      item: string,
      decision: string,
      opts: { reason?: string; json?: boolean },
    ) {
      if (decision !== 'approve' && decision !== 'deny') throw new Error('decision must be approve or deny');
      const res = await callerClientOf(this).request<Item>(
        'POST',
        `/api/v1/reviews/${enc(id)}/items/${enc(item)}/decision`,
        { decision, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) },
      );
      if (opts.json) return printJson(res);
      out(t`${res.label}: ${res.decision}\n`);
    });
  reviews
    .command('close <id>')
    .description('close a campaign now and apply its results (admin token)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, id: string, opts: { json?: boolean }) {
      const c = await clientOf(this).request<Campaign>('POST', `/api/v1/reviews/${enc(id)}/close`);
      if (opts.json) return printJson(c);
      out(t`review ${c.id} closed: ${progressOf(c)}\n`);
    });
}
