import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The portal (`/`, `/portal/…`) and admin console (`/admin/…`): the React app `npm run build` puts in
 * dist/web, served by Ferry itself (no CDN). Signing in stays on the server-rendered pages: a request
 * without a session is sent to /signin and back.
 */
export interface WebConsoleOptions {
  /** true when the request carries a live Ferry session */
  signedIn: (req: FastifyRequest) => Promise<boolean>;
  /** the built app's folder; default: dist/web beside the compiled server */
  dir?: string;
}

/**
 * Scripts and styles from Ferry only, no inline code (Vite emits none), API calls to Ferry only.
 * `form-action 'self'`: the console's forms are React handlers; a native post goes nowhere else.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/** dist/web next to dist/app (the package), or the checkout's dist/web when the server runs from src/. */
export function defaultWebDir(): string | null {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const dir of [join(here, '..', 'web'), join(here, '..', '..', 'dist', 'web')]) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return null;
}

export const webConsole: FastifyPluginAsync<WebConsoleOptions> = async (app, opts) => {
  const dir = opts.dir ?? defaultWebDir();
  const index = dir ? readFileSync(join(dir, 'index.html')) : null;

  const shell = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!(await opts.signedIn(req))) {
      return reply.redirect(`/signin?return_to=${encodeURIComponent(req.url)}`, 303);
    }
    if (!index) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The web console is not built: run `npm run build`.');
    }
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-frame-options', 'DENY')
      .header('cache-control', 'no-cache')
      .send(index);
  };
  for (const path of ['/', '/portal', '/portal/*', '/admin', '/admin/*']) {
    app.get(path, { schema: { hide: true } }, shell);
  }

  // Vite names every asset by its content hash: cache forever, a new build has new names.
  app.get<{ Params: { file: string } }>('/assets/:file', { schema: { hide: true } }, async (req, reply) => {
    const file = req.params.file;
    const type = TYPES[extname(file)];
    if (!dir || !type || !/^[\w.-]+$/.test(file)) return reply.callNotFound();
    const body = await readFile(join(dir, 'assets', file)).catch(() => null);
    if (!body) return reply.callNotFound();
    return reply
      .type(type)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('content-security-policy', CONSOLE_CSP)
      .send(body);
  });
};
