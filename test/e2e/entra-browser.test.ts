import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { launchChromium } from '../support/chromium.js';
import { type EntraIdp, startEntraIdp } from '../support/entra-idp.js';
import { type FerryProcess, freePort, startFerryProcess, stopAllFerryProcesses } from '../support/process.js';

/**
 * A person in headless Chromium clicks "Sign in with Microsoft" on Ferry's page, the local Entra
 * signs them in, and they land on their account page. Ferry runs as `ferry serve` with the Entra
 * settings in ferry.yaml and the client secret in a file beside it; the IdP's issuer is its own
 * loopback URL here (no loginEndpoint redirection).
 */
describe('sign-in with Microsoft in a browser', () => {
  let dir: string;
  let idp: EntraIdp;
  let server: FerryProcess;
  let browser: Browser;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-e2e-entra-'));
    idp = await startEntraIdp({ issuerOrigin: 'loopback' });
    const port = await freePort();
    writeFileSync(join(dir, 'entra-secret'), `${idp.clientSecret}\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, 'ferry.yaml'),
      stringify({
        upstream: {
          entra: {
            issuer: idp.issuer,
            clientId: idp.clientId,
            clientSecretFile: 'entra-secret',
            userMapping: 'jit',
            graphUrl: idp.graphUrl,
          },
        },
      }),
    );
    const env = {
      FERRY_LISTEN: `127.0.0.1:${port}`,
      FERRY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      FERRY_DATABASE_URL: `sqlite:${join(dir, 'ferry.db')}`,
      FERRY_MASTER_KEY: randomBytes(32).toString('base64'),
    };
    [server, browser] = await Promise.all([startFerryProcess({ cwd: dir, env }), launchChromium()]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllFerryProcesses();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('clicks through to Entra and back to the account page, signed in with Entra’s MFA', async () => {
    const oid = randomUUID();
    idp.signInAs({
      account: {
        oid,
        preferredUsername: 'robin@contoso.example',
        name: 'Robin Example',
        amr: ['pwd', 'mfa'],
      },
    });
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`${server.url}/signin?return_to=%2Faccount`);
    await page.click('#signin-entra');
    await page.waitForURL(`${server.url}/account`, { timeout: 30_000 }).catch(async (e) => {
      console.log('URL', page.url(), (await page.content()).slice(0, 1500), server.output().slice(-2000));
      throw e;
    });
    expect(await page.textContent('#user-name')).toBe('robin@contoso.example');
    expect(await page.textContent('h1')).toBe('Robin Example');
    expect(await page.textContent('main')).toContain('Signed in with pwd + mfa');
    expect(idp.calls.token).toBe(1);
    expect(violations).toEqual([]);

    // A refusal is a page in the browser too: Entra answers with an AADSTS error.
    idp.signInAs({
      account: { oid, preferredUsername: 'robin@contoso.example' },
      error: {
        error: 'interaction_required',
        error_description:
          'AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication.',
      },
    });
    const other = await browser.newPage();
    await other.goto(`${server.url}/signin`);
    const [response] = await Promise.all([
      other.waitForResponse((r) => r.url().startsWith(`${server.url}/signin/entra/callback`)),
      other.click('#signin-entra'),
    ]);
    expect(response.status()).toBe(400);
    expect(await other.textContent('#upstream-error')).toContain('AADSTS50076');
    await other.close();
    await page.close();
  }, 90_000);
});
