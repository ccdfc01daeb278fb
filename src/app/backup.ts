import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { engineOf, redactUrl } from '../store/open.js';
import { OperatorError } from './commands.js';

/**
 * `ferry backup`: SQLite through its online backup API (consistent while Ferry keeps writing, WAL
 * included), PostgreSQL through pg_dump's custom format. The file is created 0600 and never
 * overwritten. The master key is deliberately not in it: a stolen backup alone opens no sealed secret.
 */
export async function backupDatabase(url: string, out: string): Promise<string> {
  if (existsSync(out)) throw new OperatorError(`${out} exists; choose a new file name`);
  mkdirSync(dirname(out), { recursive: true, mode: 0o700 });
  closeSync(openSync(out, 'wx', 0o600));
  try {
    if (engineOf(url) === 'sqlite') {
      const source = new SqliteDatabase(sqlitePath(url), { fileMustExist: true, readonly: true });
      try {
        await source.backup(out);
      } finally {
        source.close();
      }
    } else {
      await run('pg_dump', [
        '--format=custom',
        '--no-owner',
        '--no-privileges',
        `--file=${out}`,
        `--dbname=${url}`,
      ]);
    }
    chmodSync(out, 0o600);
    return out;
  } catch (err) {
    rmSync(out, { force: true });
    throw err;
  }
}

/**
 * `ferry restore`: replaces the database with a backup. Every Ferry instance must be stopped first (a
 * running one would keep its own view, or its stale -wal file, of the old database).
 */
export async function restoreDatabase(url: string, file: string, options: { force: boolean }): Promise<void> {
  if (!existsSync(file)) throw new OperatorError(`${file} does not exist`);
  if (engineOf(url) === 'sqlite') {
    if (!header(file, 16).startsWith('SQLite format 3')) {
      throw new OperatorError(
        `${file} is not a SQLite backup (ferry backup of a SQLite installation writes one)`,
      );
    }
    const target = sqlitePath(url);
    if (existsSync(target) && !options.force) {
      throw new OperatorError(`${target} exists; stop Ferry and add --force to replace it`);
    }
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    // A -wal left from the old database would be replayed onto the restored one.
    for (const f of [target, `${target}-wal`, `${target}-shm`]) rmSync(f, { force: true });
    closeSync(openSync(target, 'wx', 0o600));
    const source = new SqliteDatabase(file, { fileMustExist: true, readonly: true });
    try {
      await source.backup(target);
    } finally {
      source.close();
    }
    chmodSync(target, 0o600);
    return;
  }
  if (!header(file, 5).startsWith('PGDMP')) {
    throw new OperatorError(
      `${file} is not a pg_dump custom-format backup (ferry backup of a PostgreSQL installation writes one)`,
    );
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ t: string | null }>(
      `select to_regclass('ferry_migrations')::text as t`,
    );
    if (rows[0]?.t && !options.force) {
      throw new OperatorError(
        `${redactUrl(url)} holds a Ferry database; stop Ferry and add --force to replace it`,
      );
    }
  } finally {
    await client.end();
  }
  await run('pg_restore', [
    '--clean',
    '--if-exists',
    '--no-owner',
    '--no-privileges',
    '--single-transaction',
    `--dbname=${url}`,
    file,
  ]);
}

const sqlitePath = (url: string) => url.slice('sqlite:'.length);

function header(file: string, bytes: number): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n).toString('latin1');
  } finally {
    closeSync(fd);
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', (err) =>
      reject(
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? new OperatorError(
              `${command} is not installed (PostgreSQL's client tools; e.g. apt-get install postgresql-client)`,
            )
          : err,
      ),
    );
    child.once('close', (code) =>
      code === 0
        ? resolve()
        : reject(new OperatorError(`${command} failed (exit ${code}): ${redactUrl(stderr.trim())}`)),
    );
  });
}
