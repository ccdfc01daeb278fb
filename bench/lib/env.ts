import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrateToLatest } from '../../src/store/migrate.js';
import { type Engine, openStore, type Store } from '../../src/store/open.js';

/** The PostgreSQL server the benchmark creates its database on (trust auth on loopback by default). */
export const POSTGRES_ADMIN_URL =
  process.env.FERRY_BENCH_POSTGRES_URL ??
  process.env.FERRY_TEST_POSTGRES_URL ??
  'postgres://postgres@127.0.0.1:5432/postgres';

/** The repository root (where package.json and bin/ferry.js are), wherever the bench was compiled to. */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'bin', 'ferry.js'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: cannot find the repository root (package.json + bin/ferry.js)');
    dir = up;
  }
  return dir;
})();

export interface BenchOptions {
  /** measured runs per figure (the median of these is reported); at least 5 */
  runs: number;
  /** users in the large directory (decide, memory) */
  directoryUsers: number;
  log(message: string): void;
}

/**
 * What one benchmark run owns: a temp directory, one PostgreSQL database `ferry_bench_<pid>`, the
 * child processes it started. `cleanup()` removes all of it, also when the run is interrupted.
 */
export class BenchEnv {
  readonly tmp: string;
  readonly pgName = `ferry_bench_${process.pid}`;
  readonly engines: Engine[] = ['sqlite'];
  readonly #children = new Set<ChildProcess>();
  readonly #memo = new Map<string, Promise<unknown>>();
  #pgCreated = false;
  #cleaned = false;

  private constructor(readonly options: BenchOptions) {
    this.tmp = mkdtempSync(join(tmpdir(), `ferry-bench-${process.pid}-`));
  }

  static async create(options: BenchOptions): Promise<BenchEnv> {
    const env = new BenchEnv(options);
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('select 1');
      env.engines.push('postgres');
    } catch (err) {
      options.log(
        `PostgreSQL at ${POSTGRES_ADMIN_URL} is unreachable (${(err as Error).message}): SQLite only`,
      );
    } finally {
      await client.end().catch(() => {});
    }
    return env;
  }

  get runs(): number {
    return this.options.runs;
  }

  log(message: string): void {
    this.options.log(message);
  }

  /** A new empty directory under the run's temp directory. */
  dir(name: string): string {
    const d = join(this.tmp, name);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    return d;
  }

  /**
   * An empty database of the engine: a new SQLite file, or the run's PostgreSQL database with its
   * schema dropped and recreated (one database per run, so an interrupted run leaves one name behind
   * at most, and cleanup drops it).
   */
  async freshDatabase(engine: Engine, name: string): Promise<string> {
    if (engine === 'sqlite') return `sqlite:${join(this.dir(name), 'ferry.db')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    try {
      if (!this.#pgCreated) {
        await admin.query(`drop database if exists ${this.pgName} with (force)`);
        await admin.query(`create database ${this.pgName}`);
        this.#pgCreated = true;
      }
    } finally {
      await admin.end();
    }
    const url = new URL(POSTGRES_ADMIN_URL);
    url.pathname = `/${this.pgName}`;
    const own = new pg.Client({ connectionString: url.toString() });
    await own.connect();
    try {
      await own.query('drop schema public cascade; create schema public');
    } finally {
      await own.end();
    }
    return url.toString();
  }

  /** Opens a fresh database of the engine with Ferry's schema. */
  async freshStore(engine: Engine, name: string, poolSize = 10): Promise<{ store: Store; url: string }> {
    const url = await this.freshDatabase(engine, name);
    const store = openStore(url, { poolSize });
    await migrateToLatest(store);
    return { store, url };
  }

  /** Computes something once per run (e.g. a 100k-user directory) and shares it between scenarios. */
  memo<T>(key: string, make: () => Promise<T>): Promise<T> {
    let p = this.#memo.get(key) as Promise<T> | undefined;
    if (!p) {
      p = make();
      this.#memo.set(key, p);
    }
    return p;
  }

  /** Starts a child process the run owns (stopped at cleanup if still running). */
  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess {
    const child = spawn(command, args, options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    this.#cleaned = true;
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (this.#pgCreated) {
      const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      try {
        await admin.connect();
        await admin.query(`drop database if exists ${this.pgName} with (force)`);
      } catch (err) {
        this.log(`could not drop database ${this.pgName}: ${(err as Error).message}`);
      } finally {
        await admin.end().catch(() => {});
      }
    }
    rmSync(resolve(this.tmp), { recursive: true, force: true });
  }
}
