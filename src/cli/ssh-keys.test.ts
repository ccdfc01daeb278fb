import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { generateEd25519KeyPair } from './ssh-keys.js';

it('writes Ed25519 private keys ssh-keygen reads, whose public half matches', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sshkeys-'));
  try {
    for (const comment of ['ferry', 'a-longer comment to move the padding', '']) {
      const pair = generateEd25519KeyPair(comment);
      const path = join(dir, 'id');
      writeFileSync(path, pair.privateKeyFile, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim();
      expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKeyLine.split(' ').slice(0, 2));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
