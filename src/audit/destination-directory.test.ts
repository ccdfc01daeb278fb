import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileArchive } from './archive.js';
import { makeDestinationDirectory, UnusableDirectory } from './destination-directory.js';
import { fileDestination } from './export.js';
import type { SignedTreeHead } from './tree-head.js';

const head = { treeSize: 1 } as SignedTreeHead;

describe('file destination directories', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-dest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('makes the missing parents of a directory on disk, and takes one that exists', async () => {
    const nested = join(dir, 'a', 'b', 'heads');
    await makeDestinationDirectory(nested);
    expect(statSync(nested).isDirectory()).toBe(true);
    await makeDestinationDirectory(nested);
    await fileDestination(join(dir, 'c', 'heads')).publish({ ...head } as SignedTreeHead);
    expect(statSync(join(dir, 'c', 'heads', '0000000000000001.json')).isFile()).toBe(true);
  });

  it('refuses a path through a file', async () => {
    writeFileSync(join(dir, 'plain'), '');
    await expect(makeDestinationDirectory(join(dir, 'plain', 'heads'))).rejects.toThrow(
      /plain is not a directory/,
    );
  });

  // Node 20's recursive mkdir never settled under /proc (mkdir there answers ENOENT in a directory
  // that exists, and it retried forever): the head exporter's and the archive's file writes hung.
  it.runIf(process.platform === 'linux')(
    'refuses a head or archive directory under /proc or /sys at once, saying why',
    async () => {
      for (const path of ['/proc/ferry-heads', '/proc/self/ferry/heads', '/sys/ferry-heads']) {
        const refusal = await makeDestinationDirectory(path).then(
          () => null,
          (err: unknown) => err,
        );
        expect(refusal).toBeInstanceOf(UnusableDirectory);
        expect(String(refusal)).toMatch(
          /is on (proc|sysfs), a pseudo-filesystem; choose a directory on disk/,
        );
      }
      await expect(fileDestination('/proc/ferry-heads').publish(head)).rejects.toThrow(/pseudo-filesystem/);
      await expect(
        fileArchive('/proc/ferry-archive').put('s.json', Buffer.from('{}'), 'application/json'),
      ).rejects.toThrow(/pseudo-filesystem/);
    },
    5_000,
  );
});
