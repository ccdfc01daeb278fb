import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** The PostgreSQL server tests use: FERRY_TEST_POSTGRES_URL, or the local one with trust auth. */
export const POSTGRES_ADMIN_URL =
  process.env.FERRY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Creates a database of its own for one test file or run, empty or a copy of `template`; drop()
 * removes it.
 */
export async function createPostgresDatabase(template?: string): Promise<{
  url: string;
  name: string;
  drop(): Promise<void>;
}> {
  const name = `ferry_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}${template ? ` template ${template}` : ''}`);
    // A commit waits for its WAL flush only to survive a crash of the PostgreSQL server, which no test
    // makes (they stop connections, Ferry and proxies, never the server): what a commit makes visible,
    // and when, is the same. On a busy CI disk the flush was most of a commit's time.
    await admin.query(`alter database ${name} set synchronous_commit = off`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => dropDatabase(name),
  };
}

/**
 * DROP DATABASE asks for a checkpoint, which fails for the whole server while another test file holds
 * a tablespace full on purpose (createPostgresDatabaseOnSmallDisk): wait for that test to free it.
 */
async function dropDatabase(name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await c.connect();
    try {
      await c.query(`drop database if exists ${name} with (force)`);
      return;
    } catch (err) {
      if (!/checkpoint request failed/.test((err as Error).message) || attempt >= 60) throw err;
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * An empty database whose default tablespace is a `sizeMiB` tmpfs of its own (issue 16 point 5): its
 * tables fill up for real (`disk_full`, 53100) while the server's own disk, its WAL and other tests'
 * databases are untouched. Mounting needs root (CI runs as root) and the server on this machine (the
 * tablespace is a local directory it must own). drop() removes the database, the tablespace and the mount.
 */
export async function createPostgresDatabaseOnSmallDisk(sizeMiB: number): Promise<{
  url: string;
  name: string;
  drop(): Promise<void>;
}> {
  if (process.getuid?.() !== 0)
    throw new Error('a PostgreSQL tablespace on a small tmpfs needs root to mount it (CI runs as root)');
  const name = `ferry_test_full_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pg-tablespace-'));
  chmodSync(dir, 0o755);
  let mounted = false;
  let tablespace = false;
  const cleanUp = async () => {
    try {
      await dropDatabase(name);
      if (tablespace) await admin.query(`drop tablespace if exists ${name}`);
    } finally {
      await admin.end();
      if (mounted) execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    // The server's own user must own the tablespace's directory: the owner of its data directory.
    const dataDir = (await admin.query<{ data_directory: string }>('show data_directory')).rows[0]!
      .data_directory;
    const owner = statSync(dataDir);
    execFileSync('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=${sizeMiB}m,mode=0700,uid=${owner.uid},gid=${owner.gid}`,
      `ferry-test-${name}`,
      dir,
    ]);
    mounted = true;
    await admin.query(`create tablespace ${name} location '${dir}'`);
    tablespace = true;
    await admin.query(`create database ${name} tablespace ${name}`);
  } catch (err) {
    await cleanUp();
    throw err;
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), name, drop: cleanUp };
}
