import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, runFerry } from '../support/process.js';

/**
 * A wrong command line exits 2 (issue 17), in every command family, and is caught before anything is
 * read, fetched or written: the server is a closed port and the input files do not exist, so a check
 * that came too late would exit 1 with "unreachable" or "no such file" instead.
 */
describe('usage errors in the migrate, access, saml and ssh commands', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-usage-'));
  const closed = `http://127.0.0.1:${await freePort()}`;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: Array<[string, string[], RegExp]> = [
    // migrate plan / status
    ['plan without input', ['migrate', 'plan', '--out', 'p.json'], /give --input/],
    [
      'plan with --input and --live',
      ['migrate', 'plan', '--input', 'a.json', '--live'],
      /exclude each other/,
    ],
    [
      'more credential reports than inputs',
      ['migrate', 'plan', '--input', 'a.json', '--credential-report', 'r1', '--credential-report', 'r2'],
      /more --credential-report/,
    ],
    [
      'an unknown report extension',
      ['migrate', 'plan', '--input', 'a.json', '--out', 'x.pdf'],
      /\.html, \.md or \.json/,
    ],
    [
      'a date that is not one',
      ['migrate', 'plan', '--input', 'a.json', '--as-of', 'soon'],
      /--as-of takes a date/,
    ],
    ['an unknown option', ['migrate', 'plan', '--bogus'], /unknown option/],
    ['--mark without the state', ['migrate', 'status', '--mark', 'bob'], /--mark USER signed-in\|removed/],
    ['--mark with an unknown state', ['migrate', 'status', '--mark', 'bob', 'gone'], /\(got gone\)/],
    ['a state without --mark', ['migrate', 'status', 'removed'], /only with --mark/],
    // access simulate
    [
      'simulate without --role',
      ['access', 'simulate', '--action', 's3:GetObject', '--input', 'p.json'],
      /--role/,
    ],
    [
      'simulate without input',
      ['access', 'simulate', '--role', 'R', '--action', 's3:GetObject'],
      /give --input/,
    ],
    [
      'simulate with --input and --live',
      ['access', 'simulate', '--role', 'R', '--action', 'a', '--input', 'p.json', '--live'],
      /exclude each other/,
    ],
    [
      'a context without =',
      [
        'access',
        'simulate',
        '--role',
        'R',
        '--action',
        'a',
        '--input',
        'p.json',
        '--context',
        'aws:SourceIp',
      ],
      /--context takes key=value/,
    ],
    [
      'a role duration that is not one',
      ['aws', 'roles', 'add', 'acct', 'Dev', '--max-session', 'long'],
      /12h/,
    ],
    // saml
    ['sp add without --name', ['sp', 'add', '--metadata-file', 'm.xml'], /--name/],
    ['an attribute without =', ['sp', 'add', '--name', 'X', '--attribute', 'email'], /name=field/],
    [
      'two metadata sources',
      ['sp', 'add', '--name', 'X', '--metadata-file', 'm.xml', '--metadata-url', 'https://sp.test/m'],
      /exclude each other/,
    ],
    [
      'an unknown authn strength',
      ['sp', 'add', '--name', 'X', '--min-authn-context', 'strong'],
      /single-factor/,
    ],
    ['--open with --closed', ['sp', 'set', 'sp1', '--open', '--closed'], /contradict/],
    ['--sign-status maybe', ['sp', 'set', 'sp1', '--sign-status', 'maybe'], /on or off/],
    ['sp set with an unknown strength', ['sp', 'set', 'sp1', '--min-authn-context', 'x'], /single-factor/],
    ['sp set without its argument', ['sp', 'set'], /missing required argument/],
    ['setup-account without --account', ['aws', 'setup-account'], /--account/],
    [
      '--thumbprint without --oidc',
      ['aws', 'setup-account', '--account', 'a', '--thumbprint', 'ab'],
      /--oidc/,
    ],
    // ssh
    ['ssh without a destination', ['ssh'], /Usage: ferry ssh/],
    ['ssh with a bad duration', ['ssh', 'host.test', '--duration', 'forever'], /duration like 15m/],
    ['ssh with an unknown CA', ['ssh', 'host.test', '--ca', 'dsa'], /ed25519 or rsa/],
    ['ssh-cert with a bad duration', ['ssh-cert', '--key', 'k.pub', '--duration', '5x'], /duration like 15m/],
    ['ssh-cert with an unknown CA', ['ssh-cert', '--key', 'k.pub', '--ca', 'dsa'], /ed25519 or rsa/],
    [
      'host-cert with a bad duration',
      ['ssh', 'host-cert', '--key', 'k.pub', '--hostname', 'h', '--duration', 'soon'],
      /duration like 15m/,
    ],
    ['host-cert without --key', ['ssh', 'host-cert', '--hostname', 'h'], /--key/],
    ['rotate-ca for an unknown use', ['ssh', 'rotate-ca', '--use', 'both'], /user or host/],
    ['rotate-ca with an unknown algorithm', ['ssh', 'rotate-ca', '--algorithm', 'dsa'], /ed25519 or rsa/],
    ['logins add without --login', ['ssh', 'logins', 'add', '--group', 'g'], /--login/],
    [
      'logins add with a bad duration',
      ['ssh', 'logins', 'add', '--group', 'g', '--login', 'l', '--max-duration', 'x'],
      /duration like 15m/,
    ],
    ['revoke without a serial', ['ssh', 'revoke'], /missing required argument/],
  ];

  it.concurrent.each(cases)('%s exits 2 with the reason', async (_name, args, reason) => {
    const r = await runFerry(args, {
      cwd: dir,
      env: { HOME: dir, FERRY_CONFIG_DIR: join(dir, 'config'), FERRY_SERVER: closed, FERRY_TOKEN: 'unused' },
    });
    expect(r.stderr).toMatch(reason);
    expect(r.stderr).not.toMatch(/unreachable|no such file|ENOENT/i);
    expect(r.stdout).toBe('');
    expect(r.code, r.stderr).toBe(2);
  });
});
