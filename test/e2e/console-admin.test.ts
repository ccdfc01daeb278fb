import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld, textOf } from '../support/console.js';

/**
 * The admin console's forms as an administrator uses them, in Chromium against a real Ferry: eligible
 * roles, conditional access and what-if, SCIM connections, signing keys, AWS accounts, OpenID clients,
 * SAML service providers, proxied apps, SSH logins and access reviews. axe-core checks every page at a
 * laptop and a phone width, with the forms and answers showing.
 */
describe('admin console', () => {
  let w: ConsoleWorld;
  let admin: Page;
  const TARGET = 'aws:123456789012/ConsoleReadOnly';
  const POLICY = 'Console test: developers need a security key';

  beforeAll(async () => {
    w = await startConsoleWorld([{ group: 'AWS-Account1-Administrators', role: 'ferry-administrator' }]);
    admin = await w.signedIn('test-awsadmin');
  }, 120_000);
  afterAll(async () => {
    await w?.close();
  });

  /** The page shows no error (role=alert) in its main region. */
  const noAlert = async (page: Page) => {
    const alerts = page.locator('main [role="alert"]');
    if ((await alerts.count()) > 0) throw new Error(`the page says: ${await alerts.first().textContent()}`);
  };

  it('an administrator adds a role to an AWS account and makes a group eligible for it; the developer then sees it as eligible', async () => {
    await w.visit(admin, 'AWS accounts', 'AWS accounts');
    await admin.getByRole('button', { name: 'Roles of Account1' }).click();
    const roleForm = admin.getByRole('form', { name: 'Add or change a role' });
    // The client catches an obvious mistake before anything is sent.
    await roleForm.getByLabel('Role name').fill('ConsoleReadOnly');
    await roleForm.getByLabel('Longest session (hours)').fill('13');
    await roleForm.getByRole('button', { name: 'Save role' }).click();
    await textOf(roleForm.getByRole('alert'), 'The longest session is 1 to 12 hours.');
    await roleForm.getByLabel('Longest session (hours)').fill('2');
    await roleForm.getByLabel('Description').fill('read-only, made in the console');
    await roleForm.getByRole('button', { name: 'Save role' }).click();
    await textOf(roleForm.getByRole('status'), 'Saved role ConsoleReadOnly.');
    await textOf(admin.getByRole('table', { name: /IAM roles Ferry knows in Account1/ }), 'ConsoleReadOnly');
    await w.check(admin, 'AWS accounts with roles');

    await w.visit(admin, 'Eligible roles', 'Eligible roles');
    const form = admin.getByRole('form', { name: 'Make eligible' });
    await form.getByLabel('Group name').fill('AWS-Account1-Developers');
    await form.getByLabel('AWS account').selectOption('123456789012');
    await form.getByLabel('Role name').fill('ConsoleReadOnly');
    await form.getByLabel('Longest activation (minutes)').fill('5');
    await form.getByRole('button', { name: 'Make eligible' }).click();
    await textOf(form.getByRole('alert'), 'from 15 to 720');
    await form.getByLabel('Longest activation (minutes)').fill('30');
    // The server's problem detail is shown as it is: an approver group that does not exist.
    await form.getByLabel('Approver groups').fill('No-Such-Group');
    await form.getByRole('button', { name: 'Make eligible' }).click();
    await textOf(form.getByRole('alert'), 'No-Such-Group');
    await form.getByLabel('Approver groups').fill('AWS-Account1-Administrators');
    await form.getByRole('button', { name: 'Make eligible' }).click();
    await textOf(
      form.getByRole('status'),
      `AWS-Account1-Developers may now activate ${TARGET} for up to 30 min.`,
    );
    const row = admin.getByRole('row').filter({ hasText: TARGET });
    await textOf(row, '1 of AWS-Account1-Administrators');
    await w.check(admin, 'Eligible roles after a change');

    const developer = await w.signedIn('test-awsdeveloper');
    const eligible = await developer.evaluate(async () => (await fetch('/api/v1/pim/eligible')).json());
    expect((eligible as { items: Array<{ target: string }> }).items.map((e) => e.target)).toContain(TARGET);
    await developer
      .getByRole('navigation')
      .getByRole('link', { name: 'Request access', exact: true })
      .click();
    // Among the roles they may activate (the role name is new, so it can only come from this eligibility).
    await textOf(developer.locator('main'), /Roles you may activate[\s\S]*ConsoleReadOnly in 123456789012/);
    await w.check(developer, 'Request access with the new eligibility');
  }, 120_000);

  it('an administrator creates a conditional access policy, the what-if panel shows it deciding, and switching it off changes the answer', async () => {
    await w.visit(admin, 'Conditional access', 'Conditional access');
    const form = admin.getByRole('form', { name: 'Create a policy' });
    await form.getByLabel('Policy name').fill(POLICY);
    await form.getByLabel('State').selectOption('on');
    await form.getByLabel('Groups', { exact: true }).fill('AWS-Account1-Developers');
    await form.getByLabel('Targets').fill('aws:*/Developer, not-a-target');
    await form.getByLabel('MFA', { exact: true }).uncheck();
    await form.getByLabel(/Phishing-resistant MFA/).check();
    await form.getByRole('button', { name: 'Create policy' }).click();
    await textOf(form.getByRole('alert'), 'not-a-target is not a target');
    await form.getByLabel('Targets').fill('aws:*/Developer');
    await form.getByRole('button', { name: 'Create policy' }).click();
    await textOf(form.getByRole('status'), `Created ${POLICY} (on).`);
    await textOf(admin.getByRole('table', { name: 'Policies' }), POLICY);
    const stored = await w.ferry.services.policies.get(POLICY);
    expect(stored.state).toBe('on');
    expect(stored.definition.grant.require).toEqual(['phishing-resistant-mfa']);

    const whatIf = admin.getByRole('form', { name: 'What if' });
    await whatIf.getByLabel('Person (user name)').fill('test-awsdeveloper@contoso.example');
    await whatIf.getByLabel('Target').fill('aws:123456789012/Developer');
    await whatIf.getByLabel('Signed in with').selectOption('totp');
    await whatIf.getByRole('button', { name: 'Ask' }).click();
    const answer = admin.getByRole('definition').filter({ hasText: POLICY });
    await answer.waitFor();
    await textOf(
      admin.locator('dl[aria-label="What-if answer"]'),
      /Decisionstep-up \(needs phishing-resistant-mfa\)/,
    );
    await w.check(admin, 'Conditional access with a what-if answer');

    // Switch it off from the list: what-if now allows, decided by the demo's MFA policy only.
    await admin
      .getByRole('row')
      .filter({ hasText: POLICY })
      .getByRole('button', { name: `Turn off ${POLICY}` })
      .click();
    await textOf(admin.getByRole('status').first(), `${POLICY} is off.`);
    expect((await w.ferry.services.policies.get(POLICY)).state).toBe('off');
    await whatIf.getByRole('button', { name: 'Ask' }).click();
    await textOf(admin.locator('dl[aria-label="What-if answer"]'), /Decisionallow/);
    expect(await admin.locator('dl[aria-label="What-if answer"]').textContent()).not.toContain(POLICY);
  }, 90_000);

  it('an administrator creates a SCIM connection, sees its token once, the token works against /scim/v2/Users, and revoking it stops it', async () => {
    await w.visit(admin, 'SCIM', 'SCIM connections');
    const form = admin.getByRole('form', { name: 'Create a connection' });
    await form.getByLabel('Connection name').fill('entra-console-test');
    await form.getByRole('button', { name: 'Create connection' }).click();
    await textOf(form.getByRole('status'), 'Created entra-console-test.');
    const secret = admin.getByRole('region', { name: 'The token of entra-console-test' });
    const token = ((await secret.locator('pre').textContent()) ?? '').trim();
    expect(token.length).toBeGreaterThan(40);
    await w.check(admin, 'SCIM with a new token');

    const scim = (t: string) =>
      fetch(`${w.ferry.url}/scim/v2/Users?count=1`, { headers: { authorization: `Bearer ${t}` } });
    expect((await scim(token)).status).toBe(200);
    expect((await scim(`${token.slice(0, -1)}x`)).status).toBe(401);

    // Once dismissed it is gone: neither the page nor the list shows it again.
    await secret.getByRole('button', { name: 'I have copied it' }).click();
    expect(await admin.locator('main').textContent()).not.toContain(token);
    const listed = await admin.evaluate(async () => (await fetch('/api/v1/scim/tokens')).text());
    expect(listed).not.toContain(token);

    const row = admin.getByRole('row').filter({ hasText: 'entra-console-test' });
    await row.getByRole('button', { name: 'Revoke the SCIM connection entra-console-test' }).click();
    await row.getByRole('button', { name: 'Yes, revoke the SCIM connection entra-console-test' }).click();
    await textOf(admin.getByRole('status').first(), 'Revoked entra-console-test.');
    await textOf(row, 'revoked');
    expect((await scim(token)).status).toBe(401);
  }, 60_000);

  it('an administrator rotates the SAML signing key after confirming, then activates it', async () => {
    await w.visit(admin, 'Signing keys', 'Signing keys');
    const section = admin.getByRole('region', { name: 'SAML signing keys' }).first();
    const before = await w.ferry.services.signingKeys.published('saml');
    expect(before.map((k) => k.state)).toEqual(['current']);
    await section.getByRole('button', { name: 'Rotate SAML signing keys' }).click();
    // Nothing happens before the confirmation; Cancel leaves it as it was.
    await section.getByRole('button', { name: 'Cancel' }).click();
    expect((await w.ferry.services.signingKeys.published('saml')).length).toBe(1);
    await section.getByRole('button', { name: 'Rotate SAML signing keys' }).click();
    await w.check(admin, 'Signing keys asking to confirm');
    await section.getByRole('button', { name: 'Yes, rotate SAML signing keys' }).click();
    await textOf(section.getByRole('status'), 'A new key is staged');
    await textOf(section.getByRole('table'), 'next (staged)');
    const staged = await w.ferry.services.signingKeys.published('saml');
    expect(staged.map((k) => k.state).sort()).toEqual(['current', 'next']);
    const next = staged.find((k) => k.state === 'next')!;
    expect(await (await fetch(`${w.ferry.url}/saml/metadata`)).text()).toContain(
      next.certificatePem.replace(/-----[^-]+-----|\s/g, '').slice(0, 60),
    );

    await section.getByRole('button', { name: 'Activate the staged key for SAML signing keys' }).click();
    await section.getByRole('button', { name: 'Yes, activate the staged key for SAML signing keys' }).click();
    await textOf(section.getByRole('status'), 'signs from now on');
    const after = await w.ferry.services.signingKeys.published('saml');
    expect(after.find((k) => k.state === 'current')?.id).toBe(next.id);
  }, 60_000);

  it('an administrator registers an OpenID client (secret shown once), a SAML app, a proxied app and SSH logins, and starts and decides an access review', async () => {
    await w.visit(admin, 'OpenID clients', 'OpenID clients and workloads');
    const oidc = admin.getByRole('form', { name: 'Register a client' });
    await oidc.getByLabel('Client name').fill('console-wiki');
    await oidc.getByLabel('Redirect URIs').fill('not a uri');
    await oidc.getByRole('button', { name: 'Register client' }).click();
    await textOf(oidc.getByRole('alert'), 'not an absolute URI');
    await oidc.getByLabel('Redirect URIs').fill('https://wiki.contoso.example/callback');
    await oidc.getByRole('button', { name: 'Register client' }).click();
    await textOf(oidc.getByRole('status'), 'Registered console-wiki');
    await admin.getByRole('region', { name: /The secret of/ }).waitFor();
    await w.check(admin, 'OpenID clients with a new secret');
    const [client] = (await w.ferry.services.oidcClients.list()).filter((c) => c.name === 'console-wiki');
    expect(client?.redirectUris).toEqual(['https://wiki.contoso.example/callback']);

    await w.visit(admin, 'SAML apps', 'SAML service providers');
    const saml = admin.getByRole('form', { name: 'Register a service provider' });
    await saml.getByLabel('Service provider name').fill('Console Wiki');
    await saml.getByLabel('Entity id').fill('https://wiki.contoso.example/saml');
    await saml.getByLabel('ACS URLs').fill('https://wiki.contoso.example/saml/acs');
    await saml.getByRole('button', { name: 'Register service provider' }).click();
    await textOf(saml.getByRole('status'), 'Saved Console Wiki (https://wiki.contoso.example/saml).');
    await textOf(admin.getByRole('table', { name: 'Registered SAML service providers' }), 'Console Wiki');

    await w.visit(admin, 'Proxied apps', 'Proxied apps');
    const proxy = admin.getByRole('form', { name: 'Register an app' });
    await proxy.getByLabel('App name').fill('Grafana');
    await proxy.getByLabel('URL people open').fill('https://grafana.contoso.example/dashboards');
    await proxy.getByLabel('Upstream').fill('http://127.0.0.1:3000');
    await proxy.getByLabel('Groups').fill('AWS-Account1-Developers');
    await proxy.getByRole('button', { name: 'Register app' }).click();
    await textOf(proxy.getByRole('alert'), 'lower-case letters, digits and dashes');
    await proxy.getByLabel('App name').fill('grafana');
    await proxy.getByRole('button', { name: 'Register app' }).click();
    // The server's problem detail, shown as it is.
    await textOf(proxy.getByRole('alert'), 'an app has its own origin, without a path');
    await proxy.getByLabel('URL people open').fill('https://grafana.contoso.example');
    await proxy.getByRole('button', { name: 'Register app' }).click();
    await textOf(proxy.getByRole('status'), 'Saved grafana.');
    expect((await w.ferry.services.proxyApps.get('grafana')).groups).toEqual(['AWS-Account1-Developers']);

    await w.visit(admin, 'SSH logins', 'SSH logins');
    const ssh = admin.getByRole('form', { name: 'Let a group log in' });
    await ssh.getByLabel('Group').fill('AWS-Account1-Developers');
    await ssh.getByLabel('Hosts').fill('*.build.internal');
    await ssh.getByLabel('Logins').fill('builder');
    await ssh.getByRole('button', { name: 'Save logins' }).click();
    await textOf(ssh, 'may log in as builder on *.build.internal');

    await w.visit(admin, 'Access reviews', 'Access reviews');
    const review = admin.getByRole('form', { name: 'Start a review' });
    await review.getByLabel('Review name').fill('Console Q4 developers');
    await review.getByLabel('Groups to review').fill('AWS-Account1-Developers');
    await review.getByLabel('Reviewer users').fill('test-awsadmin@contoso.example');
    await review.getByRole('button', { name: 'Start review' }).click();
    await textOf(review.getByRole('status'), 'Started Console Q4 developers');
    const items = admin.getByRole('table', { name: 'What Console Q4 developers reviews' });
    const item = items.getByRole('row').filter({ hasText: 'test-awsdeveloper@contoso.example' });
    await item.getByRole('button', { name: /^Keep/ }).click();
    await textOf(item, 'approve by test-awsadmin@contoso.example');
    await w.check(admin, 'Access reviews with items');
  }, 120_000);

  it('a helpdesk user cannot open conditional access: the page says so and the API answers 403', async () => {
    const helpdesk = await w.signedIn('test-helpdesk');
    const menu = helpdesk.getByRole('navigation');
    await menu.getByRole('link', { name: 'Users', exact: true }).waitFor();
    expect(await menu.getByRole('link', { name: 'Conditional access' }).count()).toBe(0);
    await helpdesk.goto(`${w.ferry.url}/admin/policies`);
    await helpdesk.getByRole('heading', { level: 1, name: 'Not available' }).waitFor();
    await w.check(helpdesk, 'Not available');
    const answers = await helpdesk.evaluate(async () => {
      const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const read = await fetch('/api/v1/policies');
      const write = await fetch('/api/v1/policies/sneaky', {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({ include: { all: true }, targets: ['all'], grant: { block: true } }),
      });
      return { read: read.status, write: write.status, type: (await write.json()).type as string };
    });
    expect(answers).toMatchObject({ read: 403, write: 403 });
    expect(answers.type).toMatch(/admin-role-required/);
  }, 60_000);

  it('an auditor sees the admin pages without their forms', async () => {
    const auditor = await w.signedIn('test-auditor');
    for (const [menu, heading, form] of [
      ['Eligible roles', 'Eligible roles', 'Make eligible'],
      ['Conditional access', 'Conditional access', 'Create a policy'],
      ['SCIM', 'SCIM connections', 'Create a connection'],
      ['Signing keys', 'Signing keys', null],
    ] as const) {
      await w.visit(auditor, menu, heading);
      await noAlert(auditor);
      if (form) expect(await auditor.getByRole('form', { name: form }).count()).toBe(0);
      expect(await auditor.getByRole('button', { name: /^(Remove|Rotate|Revoke|Edit)/ }).count()).toBe(0);
      await textOf(auditor.locator('main'), 'which your admin roles do not give');
    }
    // What-if is a read: the auditor may ask.
    await w.visit(auditor, 'Conditional access', 'Conditional access');
    expect(await auditor.getByRole('form', { name: 'What if' }).count()).toBe(1);
  }, 90_000);

  it('every admin page opens without an error and has no serious or critical axe-core violation', async () => {
    for (const [menu, heading] of [
      ['AWS accounts', 'AWS accounts'],
      ['Eligible roles', 'Eligible roles'],
      ['SSH logins', 'SSH logins'],
      ['SAML apps', 'SAML service providers'],
      ['OpenID clients', 'OpenID clients and workloads'],
      ['Proxied apps', 'Proxied apps'],
      ['SCIM', 'SCIM connections'],
      ['Conditional access', 'Conditional access'],
      ['Access reviews', 'Access reviews'],
      ['Signing keys', 'Signing keys'],
    ] as const) {
      await w.visit(admin, menu, heading);
      await noAlert(admin);
    }
    expect(w.checked.length).toBeGreaterThanOrEqual(25);
    expect(w.findings).toEqual([]);
  }, 180_000);
});
