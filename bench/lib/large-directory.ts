import { performance } from 'node:perf_hooks';
import { PasswordHasher } from '../../src/identity/passwords.js';
import type { Engine, Store } from '../../src/store/open.js';
import { type Directory, describe, populateDirectory, shapeFor } from './directory.js';
import type { BenchEnv } from './env.js';

/** The one password every user of the large directory has (hashed at the production cost). */
export const DIRECTORY_PASSWORD = 'correct horse battery staple';

const hashOnce = (env: BenchEnv) =>
  env.memo('directory-password-hash', () => new PasswordHasher().hash(DIRECTORY_PASSWORD));

/**
 * A fresh database of the engine holding the run's large directory (--users, default 100k). The
 * SQLite one is built once per run and shared (decide reads it, memory serves a copy of it).
 */
export async function largeDirectory(
  env: BenchEnv,
  engine: Engine,
  open: (url: string) => Promise<Store>,
): Promise<{ url: string; store: Store; directory: Directory }> {
  const build = async () => {
    const t0 = performance.now();
    const { store, url } = await env.freshStore(engine, `directory-${engine}`);
    const directory = await populateDirectory(
      store,
      shapeFor(env.options.directoryUsers, await hashOnce(env)),
    );
    env.log(
      `  ${engine}: ${describe(directory)} written in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return { store, url, directory };
  };
  if (engine === 'postgres') return build();
  const built = await env.memo('sqlite-directory', async () => {
    const { store, url, directory } = await build();
    await store.close();
    return { url, directory };
  });
  return { ...built, store: await open(built.url) };
}
