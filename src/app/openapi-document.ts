import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from './config.js';
import { startFerry } from './start.js';

/**
 * `npm run api:types`: writes Ferry's OpenAPI document (as served at /api/openapi.json) to the given
 * file, from a throwaway Ferry on an empty SQLite database. The web console's client types are
 * generated from it, so the console can only call what the server documents.
 */
async function main(out: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-openapi-'));
  try {
    const config = configSchema.parse({
      listen: '127.0.0.1:0',
      publicUrl: 'http://127.0.0.1:7070',
      database: { url: `sqlite:${join(dir, 'ferry.db')}` },
      keys: { masterKey: randomBytes(32).toString('base64') },
      log: { level: 'silent' },
    });
    const ferry = await startFerry({ config, logger: false });
    try {
      const res = await ferry.app.inject({ method: 'GET', url: '/api/openapi.json' });
      writeFileSync(out, `${JSON.stringify(JSON.parse(res.body), null, 2)}\n`);
    } finally {
      await ferry.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main(process.argv[2] ?? 'openapi.json');
