import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from './config.js';

/** A file or directory holding secrets that others than its owner may read (issue 14 point 3). */
export interface FileModeProblem {
  path: string;
  what: string;
  /** its permission bits, e.g. 0o644 */
  mode: number;
  /** the mode Ferry creates it with */
  wanted: number;
}

/** The data directory, the SQLite database with its -wal/-shm files, and the master key file. */
export function fileModeProblems(config: Config): FileModeProblem[] {
  const checks: Array<{ path: string; what: string; wanted: number }> = [];
  const { url } = config.database;
  if (url.startsWith('sqlite:') && url !== 'sqlite::memory:') {
    const file = url.slice('sqlite:'.length);
    checks.push({ path: dirname(file), what: 'data directory', wanted: 0o700 });
    checks.push({ path: file, what: 'database', wanted: 0o600 });
    checks.push({ path: `${file}-wal`, what: 'database write-ahead log', wanted: 0o600 });
    checks.push({ path: `${file}-shm`, what: 'database shared memory', wanted: 0o600 });
  }
  if (config.keys.masterKeyFile) {
    checks.push({ path: dirname(config.keys.masterKeyFile), what: 'master key directory', wanted: 0o700 });
    checks.push({ path: config.keys.masterKeyFile, what: 'master key', wanted: 0o600 });
  }
  const seen = new Set<string>();
  const problems: FileModeProblem[] = [];
  for (const check of checks) {
    if (seen.has(check.path) || !existsSync(check.path)) continue;
    seen.add(check.path);
    const mode = statSync(check.path).mode & 0o777;
    // Group or others may read, write or enter: wider than the owner alone.
    if (mode & 0o077) problems.push({ ...check, mode });
  }
  return problems;
}

export const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

/** One line for an operator: what is too open and the command that fixes it. */
export function describeFileModeProblem(p: FileModeProblem): string {
  return `${p.what} ${p.path} is mode ${octal(p.mode)}, readable beyond its owner; fix: chmod ${octal(p.wanted).slice(1)} ${p.path}`;
}
