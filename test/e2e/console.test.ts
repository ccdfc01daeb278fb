import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CONSOLE_PATH } from '../../src/aws/demo-console.js';
import { type ConsoleWorld, startConsoleWorld, textOf } from '../support/console.js';

/**
 * The web console as people use it, in Chromium against a real Ferry and moto as the local AWS:
 * the demo tenant's developer and administrator sign in with password and TOTP and do the issue's
 * tasks by clicking. axe-core checks every page visited, at a laptop and a phone width.
 * `npm run screenshots` runs the console files with FERRY_SCREENSHOTS set to write docs/screenshots/.
 */
describe('web console', () => {
  let w: ConsoleWorld;

  beforeAll(async () => {
    // Admin rights are Ferry's own access decisions, granted to groups (issue 18, point 3).
    w = await startConsoleWorld([
      { group: 'AWS-Account1-Administrators', role: 'ferry-administrator' },
      { group: 'Helpdesk', role: 'helpdesk', user: 'helen-helpdesk@contoso.example' },
      { group: 'Auditors', role: 'auditor', user: 'otto-auditor@contoso.example' },
    ]);
  }, 120_000);

  afterAll(async () => {
    await w?.close();
  });

  let developer: Page;
  let admin: Page;

  it('a developer opens the AWS console for Developer and lands on the stand-in page showing the role session', async () => {
    developer = await w.signedIn('test-awsdeveloper');
    await w.check(developer, 'My access');
    const card = developer
      .getByRole('listitem')
      .filter({ hasText: 'Developer' })
      .filter({ hasText: 'Account1' });
    await card.getByRole('button', { name: /Command line/ }).click();
    await textOf(card.locator('pre').first(), 'ferry creds --account 123456789012 --role Developer');
    await textOf(card.locator('pre').nth(1), 'credential_process = ferry');
    await card.getByRole('link', { name: /Open console/ }).click();
    await developer.waitForURL(`${w.ferry.url}${DEMO_CONSOLE_PATH}`);
    await textOf(developer.locator('#assumed-role'), 'arn:aws:sts::123456789012:assumed-role/Developer/');
    expect(await developer.locator('#access-key-id').textContent()).toMatch(/^[A-Z0-9]{16,}$/);
    await w.check(developer, 'AWS console stand-in');
    await developer.goto(`${w.ferry.url}/`);
    await developer.getByRole('heading', { level: 1, name: 'My access' }).waitFor();
  }, 60_000);

  it('the developer requests Administrator, an administrator approves it from the queue, the developer sees it active and ends it', async () => {
    await w.visit(developer, 'Request access', 'Request access');
    const form = developer.getByRole('form', { name: 'Request aws:123456789012/Administrator' });
    await form.getByLabel('Duration').selectOption({ label: '30 minutes' });
    await form.getByLabel('Reason (required)').fill('INC-42: rotate the broken KMS key');
    await form.getByRole('button', { name: 'Request Administrator' }).click();
    await textOf(form.getByRole('status'), 'waiting for approval');
    const mine = developer.getByRole('table', { name: /activations/ });
    await textOf(mine.getByRole('row').filter({ hasText: 'Administrator' }).first(), 'requested');

    admin = await w.signedIn('test-awsadmin');
    await w.visit(admin, 'Approvals', 'Approvals');
    const request = admin
      .getByRole('listitem')
      .filter({ hasText: 'test-awsdeveloper@contoso.example requests' });
    await textOf(request, 'INC-42: rotate the broken KMS key');
    await request.getByLabel('Your reason (optional)').fill('looked at INC-42');
    await request.getByRole('button', { name: /^Approve/ }).click();
    await textOf(admin.getByRole('status'), 'Approved');
    await admin.getByText('No request is waiting for you.').waitFor();

    // The developer's page updates by itself (it polls): active, with time left, then ended.
    const row = mine.getByRole('row').filter({ hasText: 'Administrator' }).first();
    await textOf(row, 'active', 15_000);
    await textOf(row, /\d+ min/);
    await w.check(developer, 'Request access');
    await row.getByRole('button', { name: /End now/ }).click();
    await developer.getByRole('status').filter({ hasText: 'Administrator ended.' }).waitFor();
    await textOf(mine.getByRole('row').filter({ hasText: 'Administrator' }).first(), 'revoked');
    const [activation] = (await w.ferry.services.activations.list({})).filter(
      (a) => a.roleName === 'Administrator',
    );
    expect(activation?.state).toBe('revoked');
    expect(activation?.approvals.map((a) => a.userName)).toEqual(['test-awsadmin@contoso.example']);
  }, 90_000);

  it('the account page lists the person’s sessions and sign-in methods, and links to sign-out', async () => {
    await w.visit(developer, 'Account', 'Account');
    await textOf(developer.getByRole('table', { name: 'Where you are signed in' }), 'this browser');
    await developer.getByRole('heading', { level: 2, name: 'Authenticator app' }).waitFor();
    expect(await developer.getByRole('link', { name: 'Sign out of this browser' }).getAttribute('href')).toBe(
      '/account',
    );
  }, 30_000);

  it('an administrator creates a user and adds them to a group, and every admin page opens', async () => {
    const held = await admin.evaluate(async () => (await fetch('/api/v1/session')).json());
    expect(held.permissions, JSON.stringify(held.adminRoles)).toContain('users:write');
    await admin.reload();
    await admin.getByRole('heading', { level: 1 }).first().waitFor();
    await w.visit(admin, 'Users', 'Users');
    const create = admin.getByRole('form', { name: 'Create a user' });
    await create.getByLabel('User name (UPN)').fill('new-dev@contoso.example');
    await create.getByLabel('Display name').fill('New Developer');
    await create.getByRole('button', { name: 'Create user' }).click();
    await create.getByRole('status').filter({ hasText: 'Created new-dev@contoso.example.' }).waitFor();
    await textOf(admin.getByRole('table'), 'new-dev@contoso.example');

    await w.visit(admin, 'Groups', 'Groups');
    await admin.getByRole('link', { name: 'AWS-Account1-Developers' }).click();
    await admin.getByRole('heading', { level: 1, name: 'Group AWS-Account1-Developers' }).waitFor();
    await admin.getByLabel('Add a member (user name)').fill('new-dev@contoso.example');
    await admin.getByRole('button', { name: 'Add member' }).click();
    await admin.getByRole('status').filter({ hasText: 'Added new-dev@contoso.example' }).waitFor();
    await textOf(admin.getByRole('table', { name: 'Members' }), 'new-dev@contoso.example');
    await w.check(admin, 'Group');
    expect(
      await w.ferry.services.groups.namesOf((await w.ferry.services.users.get('new-dev@contoso.example')).id),
    ).toEqual(['AWS-Account1-Developers']);

    // The group grants the role the new member now has.
    await textOf(
      admin.getByRole('table', { name: 'AWS roles this group grants' }),
      'aws:123456789012/Developer',
    );
    for (const [menu, heading] of [
      ['Assignments', 'Assignments'],
      ['Approvals queue', 'Approvals queue'],
      ['Audit', 'Audit'],
      ['Conditional access', 'Conditional access'],
      ['AWS accounts', 'AWS accounts'],
      ['Eligible roles', 'Eligible roles'],
      ['SSH logins', 'SSH logins'],
      ['SAML apps', 'SAML service providers'],
      ['OpenID clients', 'OpenID clients and workloads'],
      ['Proxied apps', 'Proxied apps'],
      ['SCIM', 'SCIM connections'],
      ['Access reviews', 'Access reviews'],
      ['Signing keys', 'Signing keys'],
    ] as const) {
      await w.visit(admin, menu, heading);
      await admin
        .locator('main [role="alert"]')
        .waitFor({ state: 'detached', timeout: 1000 })
        .catch(async () => {
          throw new Error(`${menu}: ${await admin.locator('main [role="alert"]').first().textContent()}`);
        });
    }
  }, 300_000);

  it('who can reach what shows the new member’s access and the group it comes through', async () => {
    await w.visit(admin, 'Who can reach what', 'Who can reach what');
    await admin.getByLabel('Person (user name)').fill('new-dev@contoso.example');
    await admin.getByRole('button', { name: 'Show their access' }).click();
    const answer = admin.getByRole('table', { name: 'What new-dev@contoso.example can reach, and why' });
    const row = answer.getByRole('row').filter({ hasText: 'aws:123456789012/Developer' });
    await textOf(row, 'group: AWS-Account1-Developers');
    await w.check(admin, 'Who can reach what');

    // The same question the other way round: the new member is among those who reach the role.
    await admin.getByLabel('Target (aws:123456789012/Developer)').fill('aws:123456789012/Developer');
    await admin.getByRole('button', { name: 'Show who' }).click();
    await textOf(
      admin.getByRole('table', { name: 'Who can reach aws:123456789012/Developer' }),
      'new-dev@contoso.example',
    );
  }, 60_000);

  it('a helpdesk user manages users but cannot open conditional access, and the server refuses it too', async () => {
    const helpdesk = await w.signedIn('helen-helpdesk@contoso.example');
    const menu = helpdesk.getByRole('navigation');
    await menu.getByRole('link', { name: 'Users', exact: true }).waitFor();
    expect(await menu.getByRole('link', { name: 'Conditional access' }).count()).toBe(0);
    await helpdesk.goto(`${w.ferry.url}/admin/policies`);
    await helpdesk.getByRole('heading', { level: 1, name: 'Not available' }).waitFor();
    await w.check(helpdesk, 'Not available');
    const status = await helpdesk.evaluate(async () => (await fetch('/api/v1/policies')).status);
    expect(status).toBe(403);
  }, 60_000);

  it('an auditor reads users and the audit trail but is offered no change, and a change is refused', async () => {
    const auditor = await w.signedIn('otto-auditor@contoso.example');
    await w.visit(auditor, 'Users', 'Users');
    await textOf(auditor.getByRole('table'), 'new-dev@contoso.example');
    expect(await auditor.getByRole('form', { name: 'Create a user' }).count()).toBe(0);
    expect(await auditor.getByRole('button', { name: /^Disable/ }).count()).toBe(0);
    await w.visit(auditor, 'Audit', 'Audit');
    await textOf(auditor.getByRole('table'), 'user.created');
    const refused = await auditor.evaluate(async () => {
      const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const res = await fetch('/api/v1/users', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({ userName: 'sneaky@contoso.example' }),
      });
      return res.status;
    });
    expect(refused).toBe(403);
  }, 60_000);

  it('every page visited has no serious or critical axe-core violation at laptop and phone widths', () => {
    expect(w.checked.length).toBeGreaterThanOrEqual(20);
    expect(w.findings).toEqual([]);
  });
});
