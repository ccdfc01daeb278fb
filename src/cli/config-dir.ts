import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Where the CLI keeps what it remembers: $FERRY_CONFIG_DIR, else $XDG_CONFIG_HOME/ferry, else
 * ~/.config/ferry. Directories are 0700 and files 0600: tokens and credentials live here.
 */
export function configDir(): string {
  if (process.env.FERRY_CONFIG_DIR) return process.env.FERRY_CONFIG_DIR;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'ferry');
}

/** A file name for a server URL: readable host and port, plus a hash so distinct URLs never collide. */
export function serverSlug(server: string): string {
  const url = URL.parse(server);
  const host = (url ? `${url.hostname}${url.port ? `_${url.port}` : ''}` : 'server').replace(/[^\w.-]/g, '_');
  const hash = createHash('sha256').update(normalizeServer(server)).digest('hex').slice(0, 10);
  return `${host}-${hash}`;
}

export function normalizeServer(server: string): string {
  return server.trim().replace(/\/+$/, '');
}

export function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** Writes via a temporary file and a rename: a reader never sees half a file, and the mode is 0600 from the start. */
export function writePrivateJson(path: string, value: unknown): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
}

interface CliSettings {
  /** the server `ferry login` last signed in to: used when no --server or FERRY_SERVER is given */
  server?: string;
}

const settingsFile = () => join(configDir(), 'config.json');

export function rememberedServer(): string | undefined {
  return readJson<CliSettings>(settingsFile())?.server;
}

export function rememberServer(server: string): void {
  const settings = readJson<CliSettings>(settingsFile()) ?? {};
  writePrivateJson(settingsFile(), { ...settings, server: normalizeServer(server) });
}

export const DEFAULT_SERVER = 'http://127.0.0.1:7070';

/** --server, then $FERRY_SERVER, then the server last signed in to, then the local default. */
export function resolveServer(option: string | undefined): string {
  return normalizeServer(option ?? process.env.FERRY_SERVER ?? rememberedServer() ?? DEFAULT_SERVER);
}
