import { readFileSync } from 'node:fs';

/**
 * Ferry's version from its package.json. Found by walking up from this module, because the same
 * code runs from `dist/` (the build) and from `dist-bench/src/` (the benchmark build), at different
 * depths below the package root.
 */
function findVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let depth = 0; depth < 5; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'ferry' && pkg.version) return pkg.version;
    } catch {
      // no package.json at this level: go up
    }
    dir = new URL('..', dir);
  }
  return '0.0.0';
}

export const FERRY_VERSION = findVersion();
