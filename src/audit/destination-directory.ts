import { mkdir, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Linux filesystems made by the kernel, not stored anywhere (statfs f_type, linux/magic.h): a head or
 * segment written there is not kept. /proc also answers ENOENT to mkdir in a directory that exists,
 * and Node 20's recursive mkdir retries that forever (a worker thread spinning, publish never settling).
 */
const PSEUDO_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x1cd1, 'devpts'],
  [0xcafe4a11, 'bpf'],
]);

export class UnusableDirectory extends Error {
  constructor(
    readonly directory: string,
    detail: string,
  ) {
    super(`${directory} cannot hold exported files: ${detail}`);
    this.name = 'UnusableDirectory';
  }
}

/**
 * Makes `directory` (and its missing parents) for a file destination, one level at a time from the
 * nearest one that exists, after checking that one is on a real filesystem: at most one stat and one
 * mkdir per path component, so it always settles (`mkdir -p` under /proc never did on Node 20).
 */
export async function makeDestinationDirectory(directory: string): Promise<void> {
  const missing: string[] = [];
  let existing = resolve(directory);
  for (;;) {
    try {
      if (!(await stat(existing)).isDirectory())
        throw new UnusableDirectory(directory, `${existing} is not a directory`);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err; // ENOTDIR: a file on the way, named next
      missing.unshift(existing);
      const parent = dirname(existing);
      if (parent === existing) throw err;
      existing = parent;
    }
  }
  const kind = PSEUDO_FILESYSTEMS.get((await statfs(existing)).type);
  if (kind)
    throw new UnusableDirectory(
      directory,
      `${existing} is on ${kind}, a pseudo-filesystem; choose a directory on disk`,
    );
  for (const dir of missing) {
    try {
      await mkdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue; // another writer made it meanwhile
      // the parent exists (found or made just before): a filesystem that refuses new directories in it
      if (code === 'ENOENT')
        throw new UnusableDirectory(directory, `${dirname(dir)} refuses new directories`);
      throw err;
    }
  }
}
