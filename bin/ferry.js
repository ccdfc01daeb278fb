#!/usr/bin/env node
// The `ferry` command. Built from src/ by `npm run build` (npm install runs it through "prepare").
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

// Node ≥ 22.1 keeps the compiled code of the modules it loads on disk, so the next start skips most
// of the compiling (ADR 0054). Node 20 has none: there this does nothing. The cache holds code Node
// will run, so it lives in a directory of this user's own (mode 0700, owned by them), never the shared
// temp dir where another local user could have planted one; NODE_COMPILE_CACHE, set by an operator,
// is Node's own business.
function compileCacheDir() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const dir = join(base, 'ferry', 'compile-cache');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const s = lstatSync(dir);
  const mine = typeof process.getuid !== 'function' || s.uid === process.getuid();
  return s.isDirectory() && mine && (s.mode & 0o077) === 0 ? dir : null;
}
if (
  module.enableCompileCache &&
  !process.env.NODE_COMPILE_CACHE &&
  process.env.NODE_DISABLE_COMPILE_CACHE !== '1'
) {
  try {
    const dir = compileCacheDir();
    if (dir) module.enableCompileCache(dir);
  } catch {
    // no home, a read-only one, or somebody else's directory: only the speed-up is lost
  }
}

// `npm run build` bundles dist/app/main.js and its modules into dist/bundle/ferry.js (ADR 0054); a
// tsc-only rebuild leaves the bundle older than dist/app/main.js, and then the modules run as built.
// FERRY_UNBUNDLED=1 runs the modules whatever the dates (an incremental `tsc --watch` rewrites only the
// files that changed, so the bundle can look newer than code it does not contain).
const mtime = (path) => statSync(new URL(path, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundleMtime = process.env.FERRY_UNBUNDLED === '1' ? -1 : mtime('../dist/bundle/ferry.js');
const bundled = bundleMtime >= 0 && bundleMtime >= mtime('../dist/app/main.js');
const { main } = await import(bundled ? '../dist/bundle/ferry.js' : '../dist/app/main.js');

process.exitCode = await main(process.argv);
