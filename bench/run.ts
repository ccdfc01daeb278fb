import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { auditAppend } from './audit.js';
import { cloudtrailIngest } from './cloudtrail.js';
import { coldStart } from './cold-start.js';
import { cryptoSign } from './crypto-sign.js';
import { decideLatency } from './decide.js';
import { BenchEnv } from './lib/env.js';
import { finish, machine } from './lib/machine.js';
import type { Row, Scenario } from './lib/scenario.js';
import { jsonRows, machineLine, markdownTable, notes, textTable } from './lib/table.js';
import { residentMemory } from './memory.js';
import { clientCredentials, credsWallTime } from './oidc.js';
import { passwordSignin } from './password-signin.js';
import { proxyLatency } from './proxy.js';
import { sessionRevocation } from './revocation.js';
import { samlAssertions } from './saml.js';
import { scaleOut } from './scale-out.js';
import { scimImport } from './scim.js';
import { signinFlood } from './signin-flood.js';
import { sshCertificates } from './ssh.js';

/** Every scenario, in the order they run (cheap references first, process-spawning ones last). */
export const SCENARIOS: Scenario[] = [
  cryptoSign,
  samlAssertions,
  clientCredentials,
  sshCertificates,
  passwordSignin,
  auditAppend,
  cloudtrailIngest,
  decideLatency,
  sessionRevocation,
  proxyLatency,
  scimImport,
  credsWallTime,
  coldStart,
  residentMemory,
  signinFlood,
  scaleOut,
];

const USAGE = `npm run bench [-- options]
  --only NAME[,NAME]   run only these scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}
  --json FILE          also write the rows as JSON [{scenario, unit, ferry, reference, referenceName, ratio, goal, met, …}]
  --markdown FILE      also write the table as Markdown
  --runs N             measured runs per figure (default 5, at least 5)
  --users N            users in the large directory for decide and memory (default 100000)`;

interface Args {
  only: string[] | null;
  json: string | null;
  markdown: string | null;
  runs: number;
  users: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { only: null, json: null, markdown: null, runs: 5, users: 100_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=')
      ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
      : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--only':
        args.only = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case '--json':
        args.json = value();
        break;
      case '--markdown':
        args.markdown = value();
        break;
      case '--runs':
        args.runs = Number(value());
        if (!Number.isInteger(args.runs) || args.runs < 5)
          throw new Error('--runs must be a whole number ≥ 5');
        break;
      case '--users':
        args.users = Number(value());
        if (!Number.isInteger(args.users) || args.users < 1000) throw new Error('--users must be ≥ 1000');
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (args.only) {
    const unknown = args.only.filter((n) => !SCENARIOS.some((s) => s.name === n));
    if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}\n${USAGE}`);
  }
  return args;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 2;
  }
  const started = performance.now();
  const log = (m: string) =>
    process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${m}\n`);
  const atStart = machine();
  const env = await BenchEnv.create({ runs: args.runs, directoryUsers: args.users, log });
  const interrupted = (signal: NodeJS.Signals) => {
    log(`${signal}: cleaning up`);
    env.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const selected = SCENARIOS.filter((s) => !args.only || args.only.includes(s.name));
  const rows: Row[] = [];
  let failed = 0;
  try {
    log(`${machineLine(atStart)}; engines: ${env.engines.join(', ')}; ${args.runs} runs per figure`);
    for (const scenario of selected) {
      const t0 = performance.now();
      log(`${scenario.name}: ${scenario.title}`);
      try {
        rows.push(...(await scenario.run(env)));
        log(`${scenario.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } catch (err) {
        failed++;
        log(`${scenario.name}: FAILED: ${(err as Error).stack ?? String(err)}`);
      }
    }
  } finally {
    await env.cleanup();
  }
  const seconds = (performance.now() - started) / 1000;
  const m = finish(atStart);
  const out = [
    `Ferry benchmark · ${machineLine(m)}`,
    `Each figure: median of ${args.runs} runs after warm-up, [min–max] over those runs; ratio = Ferry ÷ reference.`,
    '',
    textTable(rows),
    '',
    ...notes(rows).map((n) => `* ${n}`),
    '',
    `total ${seconds.toFixed(0)} s${failed ? `; ${failed} scenario(s) FAILED` : ''}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  if (args.json) writeFileSync(args.json, `${JSON.stringify(jsonRows(rows, m), null, 2)}\n`);
  if (args.markdown) {
    const md = [
      `${machineLine(m)}; ${args.runs} runs per figure; total ${seconds.toFixed(0)} s`,
      '',
      markdownTable(rows),
      '',
      ...notes(rows).map((n) => `- ${n}`),
    ];
    writeFileSync(args.markdown, `${md.join('\n')}\n`);
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
