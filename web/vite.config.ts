import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The console is served by Ferry under its strict CSP: no inline script or style, every asset a
// hashed file under /assets/. esbuild compiles the TSX (React's automatic runtime); no plugin needed.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // Inlined assets would be data: URLs; keep everything as files.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
