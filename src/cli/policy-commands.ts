import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { onFirstUse } from '../lazy-module.js';
import { clientOf, enc } from './context.js';
import { type Inert, joinInert, out, printJson, t, table } from './output.js';

/** The YAML parser loads when a file is read, not at start (ADR 0046). */
const yaml = onFirstUse<typeof import('yaml')>('yaml');

interface PolicyView {
  name: string;
  state: string;
  targets: string[];
  grant: { block: boolean; require: string[]; operator: string };
  session: { maxCredentialLifetime?: number; signInFrequency?: number };
}

interface Evaluation {
  policy: string;
  state: string;
  applied: boolean;
  why: string[];
  result?: string;
  require?: string[];
  maxDuration?: number;
}

interface WhatIf {
  user: string;
  target: string;
  result: string;
  require?: string[];
  maxDuration?: number;
  sessionTags?: Record<string, string>;
  reasons: Array<{ source: string; ref?: string; message: string }>;
  policies: Evaluation[];
}

const grantOf = (p: PolicyView) =>
  p.grant.block
    ? 'block'
    : p.grant.require.length
      ? p.grant.require.join(p.grant.operator === 'OR' ? ' | ' : ' + ')
      : '-';

/** The what-if report as a person reads it: the answer first, then every policy with why. */
export function formatWhatIf(w: WhatIf): Inert {
  const lines = [
    t`${w.user} → ${w.target}: ${w.result.toUpperCase()}${w.require ? ` (needs ${w.require.join(' and ')})` : ''}`,
  ];
  if (w.maxDuration !== undefined) lines.push(t`  credentials up to ${w.maxDuration} s`);
  if (w.sessionTags && Object.keys(w.sessionTags).length)
    lines.push(
      t`  session tags: ${Object.entries(w.sessionTags)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
  lines.push(t`reasons:`);
  for (const r of w.reasons) lines.push(t`  - ${r.message}`);
  lines.push(t`policies:`);
  if (w.policies.length === 0) lines.push(t`  (none)`);
  for (const p of w.policies) {
    const verdict = p.applied
      ? `applied → ${p.result}${p.require ? ` (${p.require.join(' and ')})` : ''}`
      : 'not applied';
    lines.push(t`  ${p.applied ? '●' : '○'} ${p.policy} [${p.state}]: ${verdict}`);
    for (const why of p.why) lines.push(t`      ${why}`);
  }
  return t`${joinInert(lines, '\n')}\n`;
}

/** Conditional access: `ferry policies …`, `ferry locations …` and `ferry access what-if`. */
export function registerPolicyCommands(program: Command): void {
  const policies = program.command('policies').description('conditional access policies');
  policies
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: PolicyView[] }>('/api/v1/policies');
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((p) => ({ ...p, targets: p.targets.join(','), grant: grantOf(p) })),
          ['name', 'state', 'targets', 'grant'],
        ),
      );
    });
  policies.command('show <name>').action(async function (this: Command, name: string) {
    printJson(await clientOf(this).get(`/api/v1/policies/${enc(name)}`));
  });
  policies
    .command('apply <file>')
    .description(
      'create or replace policies from a YAML or JSON file (one policy, or a list under `policies:`)',
    )
    .action(async function (this: Command, file: string) {
      let doc: unknown;
      try {
        doc = yaml.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message.split('\n')[0]}`);
      }
      const list = (
        doc && typeof doc === 'object' && 'policies' in doc ? (doc as { policies: unknown }).policies : [doc]
      ) as Array<Record<string, unknown>>;
      if (!Array.isArray(list)) throw new Error(`${file}: policies must be a list`);
      for (const p of list) {
        if (typeof p?.name !== 'string') throw new Error(`${file}: every policy needs a name`);
        const res = await clientOf(this).request<PolicyView>('PUT', `/api/v1/policies/${enc(p.name)}`, p);
        out(t`${res.name}: ${res.state}\n`);
      }
    });
  for (const state of ['on', 'off', 'report-only'] as const) {
    policies
      .command(`${state === 'on' ? 'enable' : state === 'off' ? 'disable' : 'report-only'} <name>`)
      .description(`set a policy's state to ${state}`)
      .action(async function (this: Command, name: string) {
        const res = await clientOf(this).request<PolicyView>('POST', `/api/v1/policies/${enc(name)}/state`, {
          state,
        });
        out(t`${res.name}: ${res.state}\n`);
      });
  }
  policies.command('remove <name>').action(async function (this: Command, name: string) {
    await clientOf(this).request('DELETE', `/api/v1/policies/${enc(name)}`);
    out(t`removed ${name}\n`);
  });

  const locations = program.command('locations').description('named locations (IP ranges) policies refer to');
  locations
    .command('list')
    .option('--json', 'print JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const res = await clientOf(this).get<{ items: Array<{ name: string; ranges: string[] }> }>(
        '/api/v1/named-locations',
      );
      if (opts.json) return printJson(res.items);
      out(
        table(
          res.items.map((l) => ({ ...l, ranges: l.ranges.join(',') })),
          ['name', 'ranges'],
        ),
      );
    });
  locations
    .command('set <name> <ranges...>')
    .description('create or replace a named location, e.g. `ferry locations set office 203.0.113.0/24`')
    .action(async function (this: Command, name: string, ranges: string[]) {
      await clientOf(this).request('PUT', `/api/v1/named-locations/${enc(name)}`, { ranges });
      out(t`${name}: ${ranges.join(', ')}\n`);
    });
  locations.command('remove <name>').action(async function (this: Command, name: string) {
    await clientOf(this).request('DELETE', `/api/v1/named-locations/${enc(name)}`);
    out(t`removed ${name}\n`);
  });

  const access =
    program.commands.find((c) => c.name() === 'access') ??
    program.command('access').description('access questions');
  access
    .command('what-if')
    .description('what decide() would answer, policy by policy (exit 0 allow, 1 deny, 2 step-up)')
    .option('--user <upn>', 'the user')
    .option('--workload <client>', 'or a workload (client id or name)')
    .requiredOption(
      '--target <target>',
      'aws:<account>/<role>, aws:<account>/permission-set/<name>, ssh:<host>, app:<name>',
    )
    .option('--ip <address>', 'the address the request comes from')
    .option('--client <type>', 'browser, cli or workload')
    .option('--mfa <method>', 'how the person signed in: none, totp or webauthn', 'none')
    .option('--signed-in <seconds>', 'seconds since that sign-in', '0')
    .option('--sign-in-risk <level>', 'none, low, medium or high')
    .option('--device <jwt>', 'a device posture assertion')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: {
        user?: string;
        workload?: string;
        target: string;
        ip?: string;
        client?: string;
        mfa: string;
        signedIn: string;
        signInRisk?: string;
        device?: string;
        json?: boolean;
      },
    ) {
      const res = await clientOf(this).request<WhatIf>('POST', '/api/v1/access/what-if', {
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.workload ? { workload: opts.workload } : {}),
        target: opts.target,
        ...(opts.ip ? { ip: opts.ip } : {}),
        ...(opts.client ? { client: opts.client } : {}),
        ...(opts.workload ? {} : { mfa: opts.mfa }),
        signedInSecondsAgo: Number(opts.signedIn),
        ...(opts.signInRisk ? { signInRisk: opts.signInRisk } : {}),
        ...(opts.device ? { device: opts.device } : {}),
      });
      if (opts.json) printJson(res);
      else out(formatWhatIf(res));
      process.exitCode = res.result === 'allow' ? 0 : res.result === 'deny' ? 1 : 2;
    });
}
