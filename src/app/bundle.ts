import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Packages bundled into dist/bundle with Ferry's own modules (ADR 0054): pure ES modules that only
 * Ferry (or another package in this list) imports, and that come in hundreds of small files. Node 20
 * loads an ES module graph file by file (resolve, stat, read, compile, link): about 1,100 files before
 * /readyz, which was most of a warm start. Everything else stays external and loads from
 * node_modules as before: CommonJS packages that find their files by __dirname (Fastify's plugins,
 * swagger-ui), native addons, and the packages loaded at first use (AWS SDK, oidc-provider, WebAuthn).
 */
export const BUNDLED_PACKAGES = [
  'kysely',
  '@sinclair/typebox',
  'zod',
  'jose',
  'openid-client',
  'oauth4webapi',
] as const;

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/**
 * Builds dist/bundle/ferry.js (and its chunks, one per `await import()` of Ferry's own lazily loaded
 * modules) from dist/app/main.js, which tsc wrote just before. bin/ferry.js runs the bundle while it
 * is at least as new as dist/app/main.js, and dist/app/main.js otherwise (after a tsc-only rebuild).
 */
export async function bundle(distDir: string): Promise<void> {
  // esbuild is a build-time tool (a dev dependency): imported here only, never by the server.
  const { build } = await import('esbuild');
  const outdir = `${distDir}/bundle`;
  rmSync(outdir, { recursive: true, force: true });
  const inside = new Set<string>(BUNDLED_PACKAGES);
  await build({
    entryPoints: { ferry: `${distDir}/app/main.js` },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Class and function names stay as written: errors are told apart by name in places (main.ts).
    keepNames: true,
    sourcemap: true,
    logLevel: 'warning',
    plugins: [
      {
        name: 'ferry-externals',
        setup(b) {
          // Bare specifiers (packages, node: builtins) stay imports unless listed above.
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            inside.has(packageName(args.path)) ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await bundle(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, ''));
}
