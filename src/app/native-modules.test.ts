import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeModuleProblem } from './native-modules.js';

describe('the message for a native module built for another Node.js', () => {
  it('names the module, both ABI versions and the rebuild command for its folder', () => {
    // The text Node.js (src/node_binding.cc) throws when the ABI differs, with its code.
    const err = Object.assign(
      new Error(
        "The module '/usr/lib/node_modules/ferry/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\n" +
          'was compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\n' +
          'NODE_MODULE_VERSION 137. Please try re-compiling or re-installing\nthe module (for instance, using `npm rebuild` or `npm install`).',
      ),
      { code: 'ERR_DLOPEN_FAILED' },
    );
    const text = nativeModuleProblem(err)!;
    expect(text).toContain('better-sqlite3 was built for another Node.js version (NODE_MODULE_VERSION 115)');
    expect(text).toContain(`this is Node.js ${process.version}, which needs 137`);
    expect(text).toContain('fix: cd /usr/lib/node_modules/ferry && npm rebuild better-sqlite3');
  });

  it('explains a real dlopen failure of an addon that is no library at all', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-native-'));
    const file = join(dir, 'node_modules', 'broken.node');
    try {
      mkdirSync(join(dir, 'node_modules'));
      writeFileSync(file, 'not an ELF file');
      let thrown: unknown;
      try {
        process.dlopen({ exports: {} }, file);
      } catch (err) {
        thrown = err;
      }
      const text = nativeModuleProblem(thrown)!;
      expect(text).toContain(`could not be loaded by Node.js ${process.version}`);
      expect(text).toContain('npm rebuild');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves other errors alone', () => {
    expect(nativeModuleProblem(new Error('ECONNREFUSED'))).toBeNull();
    expect(nativeModuleProblem(undefined)).toBeNull();
  });
});
