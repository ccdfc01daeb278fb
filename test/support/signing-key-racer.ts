/**
 * One Ferry instance starting up, as far as signing keys go: run by `vite-node` as a child process so
 * that several of them race on one database the way separate `ferry serve` processes do (two SQLite
 * connections in ONE process can't race: better-sqlite3 waits for a lock synchronously, blocking the
 * event loop of the transaction it waits for).
 *
 * Environment: RACER_DATABASE_URL, RACER_MASTER_KEY (base64), RACER_NOW (ISO-8601).
 * Protocol: after making its key (so after its "is there a current key?" check) it prints `ready`
 * and waits for a line on standard input; then it prints `{"id": "<current key id>"}` and exits.
 * Keep standard input open until then: Vite (inside vite-node) exits the process when it ends.
 */
import { createInterface } from 'node:readline';
import { ManualClock } from '../../src/clock.js';
import { MasterKey, parseMasterKey } from '../../src/keys/master-key.js';
import { generateSelfSignedRsa } from '../../src/keys/self-signed-certificate.js';
import { SigningKeys } from '../../src/keys/signing-keys.js';
import { openStore } from '../../src/store/open.js';

const store = openStore(process.env.RACER_DATABASE_URL!);
const clock = new ManualClock(process.env.RACER_NOW!);
const lines = createInterface({ input: process.stdin });
const go = new Promise<void>((resolve) => lines.once('line', () => resolve()));

const keys = new SigningKeys(store, clock, new MasterKey(parseMasterKey(process.env.RACER_MASTER_KEY!)), {
  generateKey: async (purpose, now) => {
    const material = await generateSelfSignedRsa({
      commonName: `Ferry ${purpose} signing`,
      modulusLength: 2048,
      notBefore: now,
      validityYears: 10,
    });
    process.stdout.write('ready\n');
    await go;
    return material;
  },
});

let code = 0;
try {
  const key = await keys.ensureCurrent('saml');
  process.stdout.write(`${JSON.stringify({ id: key.id })}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  code = 1;
} finally {
  lines.close();
  await store.close();
}
// Standard input is still open (vite-node's Vite server would exit the process when it ends).
process.exit(code);
