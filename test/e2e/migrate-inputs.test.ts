import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFerry } from '../support/process.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/migrate/${name}`, import.meta.url));

/** docs/migrate.md once wrote `--out report.json` over the credential report it read as `report.json`. */
describe('ferry migrate plan never overwrites its input', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-migrate-inputs-'));
    copyFileSync(fixture('auth-details.json'), join(dir, 'auth-details.json'));
    copyFileSync(fixture('credential-report.csv'), join(dir, 'report.json'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses with a usage error (exit 2) and writes nothing when an output is an input', async () => {
    const before = readFileSync(join(dir, 'report.json'), 'utf8');
    for (const outputs of [
      ['--out', 'report.html', '--out', 'report.json'],
      ['--out', 'report.html', '--tenant-out', './auth-details.json'],
      ['--out', 'report.html', '--state', join(dir, 'report.json')],
    ]) {
      const run = await runFerry(
        ['migrate', 'plan', '--input', 'auth-details.json', '--credential-report', 'report.json', ...outputs],
        { cwd: dir },
      );
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/is also an input/);
    }
    expect(readFileSync(join(dir, 'report.json'), 'utf8')).toBe(before);
    expect(() => readFileSync(join(dir, 'report.html'))).toThrow();

    // the documented example, with the credential report under its own name, works
    const ok = await runFerry(
      [
        'migrate',
        'plan',
        '--input',
        'auth-details.json',
        '--credential-report',
        'report.json',
        '--out',
        'plan.json',
      ],
      { cwd: dir },
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(dir, 'report.json'), 'utf8')).toBe(before);
  });
});
