#!/usr/bin/env node
// The `ferry` command. Built from src/ by `npm run build` (npm install runs it through "prepare").
import { statSync } from 'node:fs';
import module from 'node:module';

// Node ≥ 22.1 keeps the compiled code of the modules it loads on disk, so the next start skips most
// of the compiling (ADR 0054). Node 20 has no such cache: there this does nothing.
try {
  module.enableCompileCache?.();
} catch {
  // an unwritable cache directory only costs the speed-up
}

// `npm run build` bundles dist/app/main.js and its modules into dist/bundle/ferry.js (ADR 0054); a
// tsc-only rebuild leaves the bundle older than dist/app/main.js, and then the modules run as built.
const mtime = (path) => statSync(new URL(path, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundleMtime = mtime('../dist/bundle/ferry.js');
const bundled = bundleMtime >= 0 && bundleMtime >= mtime('../dist/app/main.js');
const { main } = await import(bundled ? '../dist/bundle/ferry.js' : '../dist/app/main.js');

process.exitCode = await main(process.argv);
