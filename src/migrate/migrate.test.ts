import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTenant } from '../app/tenant.js';
import { parseAuthorizationDetails } from './auth-details.js';
import { parseCredentialReport } from './credential-report.js';
import { equivalent } from './equivalence.js';
import { ESCALATION_PATHS, escalationPaths } from './escalation.js';
import { type Finding, findFindings } from './findings.js';
import { buildInventory, type NamedPolicy } from './inventory.js';
import { buildPlan } from './plan.js';
import { htmlReport } from './report-html.js';
import { markdownReport } from './report-markdown.js';
import { simulate } from './simulate.js';
import { detectRemoved, mark, stateFromPlan } from './state.js';
import { tenantOf } from './tenant-file.js';

// A realistic account in the shape AWS documents for get-account-authorization-details and the credential report.
const fixture = (name: string) =>
  readFileSync(new URL(`../../test/fixtures/migrate/${name}`, import.meta.url), 'utf8');
const details = () => parseAuthorizationDetails(JSON.parse(fixture('auth-details.json')));
const report = () => parseCredentialReport(fixture('credential-report.csv'));
const ASOF = new Date('2026-06-30T00:00:00Z');
const inventory = () => buildInventory({ details: details(), credentialReport: report(), alias: 'Account1' });
const ACCOUNT = '111122223333';
const has = (fs: Finding[], rule: string, subject: string) =>
  fs.some((f) => f.rule === rule && f.subject === subject);
const doc = (...Statement: object[]) => ({ Version: '2012-10-17', Statement });

describe('inventory', () => {
  it('records users, groups with members, custom and service-linked roles, policy kinds and attachments, providers', () => {
    const inv = inventory();
    expect(inv.accountId).toBe(ACCOUNT);
    expect(inv.users.find((u) => u.name === 'deploy-bot')).toMatchObject({
      kind: 'service',
      console: false,
      mfa: false,
    });
    expect(inv.users.find((u) => u.name === 'bob')).toMatchObject({
      kind: 'person',
      console: true,
      mfa: false,
    });
    expect(inv.groups.find((g) => g.name === 'Developers')?.members).toEqual(['bob', 'erin']);
    const roles = Object.fromEntries(inv.roles.map((r) => [r.name, r.serviceLinked]));
    expect(roles).toEqual({
      AWSServiceRoleForSupport: true,
      AWSServiceRoleForTrustedAdvisor: true,
      OktaAdmin: false,
      LambdaDeployer: false,
    });
    const kinds = Object.fromEntries(inv.policies.map((p) => [p.id, p.kind]));
    expect(kinds['arn:aws:iam::aws:policy/job-function/ViewOnlyAccess']).toBe('job-function');
    expect(kinds['arn:aws:iam::aws:policy/AdministratorAccess']).toBe('aws-managed');
    expect(kinds[`arn:aws:iam::${ACCOUNT}:policy/DeveloperS3`]).toBe('customer-managed');
    expect(kinds['user/deploy-bot/deploy']).toBe('inline');
    expect(inv.policies.find((p) => p.id.endsWith('/DeveloperS3'))?.attachedTo).toEqual([
      'user/old-bot',
      'group/Developers',
    ]);
    expect(inv.identityProviders).toEqual([
      {
        kind: 'saml',
        arn: `arn:aws:iam::${ACCOUNT}:saml-provider/Okta`,
        name: 'Okta',
        trustedBy: ['OktaAdmin'],
      },
    ]);
    expect(inv.root).toEqual({
      accessKeysActive: 1,
      passwordLastUsed: '2026-06-20T08:00:00+00:00',
      mfaActive: true,
    });
  });

  it('reads the base64 JSON of get-credential-report and refuses what is not a report', () => {
    const csv = fixture('credential-report.csv');
    const json = JSON.stringify({ Content: Buffer.from(csv).toString('base64'), ReportFormat: 'text/csv' });
    expect(parseCredentialReport(json)).toEqual(report());
    expect(() => parseCredentialReport('a,b\n1,2')).toThrow(/no user column/);
    expect(() => parseAuthorizationDetails({ Users: [] })).toThrow(/get-account-authorization-details/);
  });
});

describe('findings (each with a positive and a negative case)', () => {
  let findings: Finding[];
  const load = async () => (findings ??= await findFindings(inventory(), ASOF));

  it('root access keys and recent root use; not when the root row is clean', async () => {
    const fs = await load();
    expect(has(fs, 'root-access-keys', 'root')).toBe(true);
    expect(has(fs, 'root-recent-use', 'root')).toBe(true);
    expect(has(fs, 'root-no-mfa', 'root')).toBe(false);
    const clean = report().map((r) =>
      r.user === '<root_account>'
        ? {
            ...r,
            passwordLastUsed: '2025-01-01T00:00:00Z',
            accessKeys: r.accessKeys.map((k) => ({ ...k, active: false })),
          }
        : r,
    );
    const fs2 = await findFindings(buildInventory({ details: details(), credentialReport: clean }), ASOF);
    expect(fs2.filter((f) => f.subject === 'root')).toEqual([]);
  });

  it("suggests replacing other identity providers, never Ferry's own SAML provider", async () => {
    const withFerry = (name: string) =>
      buildInventory({
        details: details(),
        credentialReport: report(),
        identityProviders: [{ kind: 'saml', arn: `arn:aws:iam::${ACCOUNT}:saml-provider/${name}` }],
      });
    const providers = (fs: Finding[]) =>
      fs.filter((f) => f.rule === 'identity-provider-to-replace').map((f) => f.subject);
    expect(providers(await findFindings(withFerry('Ferry'), ASOF))).toEqual(['provider/Okta']);
    expect(providers(await findFindings(withFerry('CorpFerry'), ASOF, 'CorpFerry'))).toEqual([
      'provider/Okta',
    ]);
    // a provider merely called like Ferry's default, when Ferry's is named otherwise, is still another IdP
    expect(providers(await findFindings(withFerry('Ferry'), ASOF, 'CorpFerry')).sort()).toEqual([
      'provider/Ferry',
      'provider/Okta',
    ]);
    const plan = await buildPlan([withFerry('Ferry')], { asOf: ASOF });
    expect(plan.findings.some((f) => f.subject === 'provider/Ferry')).toBe(false);
  });

  it('console users without MFA, not those with MFA nor programmatic users', async () => {
    const fs = await load();
    expect(has(fs, 'user-no-mfa', 'user/bob')).toBe(true);
    expect(has(fs, 'user-no-mfa', 'user/alice')).toBe(false);
    expect(has(fs, 'user-no-mfa', 'user/deploy-bot')).toBe(false);
  });

  it('access keys older than 90 days or unused; not a fresh key in use', async () => {
    const fs = await load();
    expect(has(fs, 'access-key-old', 'user/deploy-bot')).toBe(true);
    expect(has(fs, 'access-key-unused', 'user/deploy-bot')).toBe(false);
    expect(has(fs, 'access-key-unused', 'user/old-bot')).toBe(true);
    expect(has(fs, 'access-key-old', 'user/bob')).toBe(false);
    expect(has(fs, 'access-key-unused', 'user/bob')).toBe(false);
  });

  it('inactive users; not users who signed in lately', async () => {
    const fs = await load();
    expect(has(fs, 'inactive-user', 'user/carol')).toBe(true);
    expect(has(fs, 'inactive-user', 'user/alice')).toBe(false);
    expect(has(fs, 'inactive-user', 'user/deploy-bot')).toBe(false);
  });

  it('AdministratorAccess or *:* holders (through groups and roles); not S3-only users', async () => {
    const fs = await load();
    expect(has(fs, 'administrator', 'user/alice')).toBe(true);
    expect(has(fs, 'administrator', 'role/OktaAdmin')).toBe(true);
    expect(has(fs, 'administrator', 'user/bob')).toBe(false);
    expect(has(fs, 'administrator', 'role/AWSServiceRoleForSupport')).toBe(false);
  });

  it('escalation paths by simulation: PassRole+RunInstances, PassRole+Lambda, CreatePolicyVersion; an explicit Deny closes one', async () => {
    const fs = await load();
    expect(has(fs, 'escalation:passrole-ec2', 'user/deploy-bot')).toBe(true);
    expect(has(fs, 'escalation:passrole-lambda', 'role/LambdaDeployer')).toBe(true);
    expect(has(fs, 'escalation:create-policy-version', 'user/dave')).toBe(true);
    expect(has(fs, 'escalation:passrole-ec2', 'user/erin')).toBe(false); // Deny ec2:RunInstances
    expect(fs.some((f) => f.rule.startsWith('escalation:') && f.subject === 'user/bob')).toBe(false);
    const ev = fs.find((f) => f.rule === 'escalation:passrole-ec2' && f.subject === 'user/deploy-bot')!
      .evidence!;
    expect(ev[0]).toMatchObject({ policy: 'user/deploy-bot/deploy', statementIndex: 1, effect: 'Allow' });
  });

  it('service accounts need workload identity (high when a key is old); people are not service accounts', async () => {
    const fs = await load();
    expect(fs.find((f) => f.rule === 'service-account' && f.subject === 'user/deploy-bot')?.severity).toBe(
      'high',
    );
    const fresh = report().map((r) =>
      r.user === 'deploy-bot'
        ? { ...r, accessKeys: r.accessKeys.map((k) => ({ ...k, lastRotated: '2026-06-01T00:00:00Z' })) }
        : r,
    );
    const fs2 = await findFindings(buildInventory({ details: details(), credentialReport: fresh }), ASOF);
    expect(fs2.find((f) => f.rule === 'service-account' && f.subject === 'user/deploy-bot')?.severity).toBe(
      'medium',
    );
    expect(has(fs, 'service-account', 'user/bob')).toBe(false);
  });

  it('without a credential report it says so and makes no claim about MFA or keys', async () => {
    const fs = await findFindings(buildInventory({ details: details() }), ASOF);
    expect(has(fs, 'no-credential-report', 'account')).toBe(true);
    expect(
      fs.some((f) => ['user-no-mfa', 'access-key-old', 'inactive-user', 'service-account'].includes(f.rule)),
    ).toBe(false);
    expect(has(await load(), 'no-credential-report', 'account')).toBe(false);
  });
});

describe('escalation paths, each on its own', () => {
  const arn = `arn:aws:iam::${ACCOUNT}:user/probe`;
  for (const path of ESCALATION_PATHS) {
    it(`${path.id}: open with ${path.actions.join(' + ')}, closed without the last one or under a Deny`, async () => {
      const open: NamedPolicy[] = [
        { name: 'p', policy: doc({ Effect: 'Allow', Action: path.actions, Resource: '*' }) },
      ];
      expect((await escalationPaths(arn, open)).map((h) => h.path.id)).toContain(path.id);
      if (path.actions.length > 1) {
        const partial: NamedPolicy[] = [
          { name: 'p', policy: doc({ Effect: 'Allow', Action: path.actions.slice(0, -1), Resource: '*' }) },
        ];
        expect((await escalationPaths(arn, partial)).map((h) => h.path.id)).not.toContain(path.id);
      }
      const denied: NamedPolicy[] = [
        {
          name: 'p',
          policy: doc(
            { Effect: 'Allow', Action: path.actions, Resource: '*' },
            { Effect: 'Deny', Action: path.actions[0], Resource: '*' },
          ),
        },
      ];
      expect((await escalationPaths(arn, denied)).map((h) => h.path.id)).not.toContain(path.id);
    });
  }
});

describe('simulation and equivalence', () => {
  it('answers allowed with the deciding statement, denied with an explicit Deny, and honours conditions', async () => {
    const policies: NamedPolicy[] = [
      {
        name: 'p',
        policy: doc(
          {
            Sid: 'Put',
            Effect: 'Allow',
            Action: 's3:PutObject',
            Resource: 'arn:aws:s3:::logs/*',
            Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } },
          },
          { Sid: 'NoSecret', Effect: 'Deny', Action: 's3:*', Resource: 'arn:aws:s3:::logs/secret/*' },
        ),
      },
    ];
    const req = {
      principalArn: `arn:aws:iam::${ACCOUNT}:role/x`,
      action: 's3:PutObject',
      resource: 'arn:aws:s3:::logs/a.txt',
    };
    const yes = await simulate(policies, { ...req, context: { 'aws:SourceIp': '10.1.2.3' } });
    expect(yes).toMatchObject({ allowed: true, deciding: [{ policy: 'p', statementIndex: 1, sid: 'Put' }] });
    expect((await simulate(policies, { ...req, context: { 'aws:SourceIp': '192.0.2.1' } })).allowed).toBe(
      false,
    );
    const no = await simulate(policies, {
      ...req,
      resource: 'arn:aws:s3:::logs/secret/k',
      context: { 'aws:SourceIp': '10.1.2.3' },
    });
    expect(no).toMatchObject({
      allowed: false,
      result: 'ExplicitlyDenied',
      deciding: [{ sid: 'NoSecret', effect: 'Deny' }],
    });
    await expect(simulate(policies, { ...req, action: 's3:NoSuchThing' })).rejects.toThrow(/cannot simulate/);
  });

  it('equivalent sets by simulation even with different documents; different sets are told apart with the request', async () => {
    const p = `arn:aws:iam::${ACCOUNT}:role/x`;
    const a: NamedPolicy[] = [{ name: 'a', policy: doc({ Effect: 'Allow', Action: 's3:*', Resource: '*' }) }];
    const b: NamedPolicy[] = [
      { name: 'b', policy: doc({ Sid: 'X', Effect: 'Allow', Action: ['s3:*'], Resource: ['*'] }) },
    ];
    const c: NamedPolicy[] = [
      { name: 'c', policy: doc({ Effect: 'Allow', Action: 's3:Get*', Resource: '*' }) },
    ];
    expect(await equivalent(a, b, p)).toMatchObject({ equivalent: true, method: 'identical' });
    const split: NamedPolicy[] = [
      {
        name: 'd',
        policy: doc(
          { Effect: 'Allow', Action: 's3:*', Resource: '*' },
          { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::x/*' },
        ),
      },
    ];
    expect(await equivalent(a, split, p)).toMatchObject({ equivalent: true, method: 'simulated' });
    const diff = await equivalent(a, c, p);
    expect(diff.equivalent).toBe(false);
    expect(diff.difference?.left).toBe(true);
  });
});

describe('plan, tenant file, reports and checklist', () => {
  it('merges equivalent groups into one role each, named AWS-<alias>-<role>, trusting Ferry only', async () => {
    const plan = await buildPlan([inventory()], { asOf: ASOF });
    const a = plan.accounts[0]!;
    const byName = Object.fromEntries(
      a.roles.map((r) => [r.name, r.replaces.map((x) => `${x.source}:${x.equivalence}`)]),
    );
    expect(byName.Administrator).toEqual(['group/Admins:first', 'group/Operators:identical']);
    expect(byName.Developers).toEqual([
      'group/Developers:first',
      'group/WebDevelopers:simulated',
      'user/old-bot:identical',
    ]);
    expect(byName.ViewOnly).toEqual(['group/Auditors:first']);
    expect(a.roles.find((r) => r.name === 'ViewOnly')?.directoryGroup).toBe('AWS-Account1-ViewOnly');
    expect(JSON.stringify(a.roles[0]!.trustPolicy)).toContain(`arn:aws:iam::${ACCOUNT}:saml-provider/Ferry`);
    expect(a.emptyGroups).toEqual(['Empty']);
    const bob = a.users.find((u) => u.user === 'bob')!;
    expect(bob).toMatchObject({ state: 'mapped', directoryGroups: ['AWS-Account1-Developers'] });
    const tenant = parseTenant(tenantOf(plan));
    expect(tenant.assignments).toContainEqual({
      group: 'AWS-Account1-Administrator',
      account: 'Account1',
      role: 'Administrator',
    });
    expect(tenant.accounts[0]!.roles.map((r) => r.name).sort()).toEqual(a.roles.map((r) => r.name).sort());
  });

  it('reports list the policies in use and summarise the AWS managed catalogue in one row', async () => {
    const base = details();
    const catalogue = Array.from({ length: 1485 }, (_, i) => ({
      PolicyName: `AwsCatalogue${i}`,
      Arn: `arn:aws:iam::aws:policy/AwsCatalogue${i}`,
      AttachmentCount: 0,
      DefaultVersionId: 'v1',
      PolicyVersionList: [],
    }));
    const withCatalogue = { ...base, Policies: [...base.Policies, ...catalogue] } as typeof base;
    const plan = await buildPlan([buildInventory({ details: withCatalogue, credentialReport: report() })], {
      asOf: ASOF,
    });
    for (const text of [htmlReport(plan), markdownReport(plan)]) {
      expect(text).not.toContain('AwsCatalogue7');
      expect(text).toMatch(/\d+ AWS managed policies/);
      // a policy in use is still listed by name
      expect(text).toContain('arn:aws:iam::aws:policy/AdministratorAccess');
    }
  });

  it('reports: HTML is self-contained with three SVG charts; Markdown lists the findings', async () => {
    const plan = await buildPlan([inventory()], { asOf: ASOF });
    const html = htmlReport(plan);
    expect(html.match(/<svg /g)?.length).toBe(3);
    expect(html).not.toMatch(/<script|<link|src=|href="http/);
    expect(html).toContain('Findings by severity');
    expect(markdownReport(plan)).toContain('| high | 111122223333 | user/bob |');
  });

  it('checklist: mapped → signed-in → removed, never backwards; removal detected from a fresh inventory', async () => {
    const plan = await buildPlan([inventory()], { asOf: ASOF });
    const state = stateFromPlan(plan, null, ASOF);
    expect(() => mark(state, 'nobody', 'signed-in', ASOF)).toThrow(/not found/);
    expect(() => mark(state, 'bob', 'done', ASOF)).toThrow(/signed-in or removed/);
    expect(mark(state, 'bob', 'signed-in', ASOF).state).toBe('signed-in');
    const fresh = details();
    fresh.UserDetailList = fresh.UserDetailList.filter((u) => u.UserName !== 'bob');
    expect(detectRemoved(state, buildInventory({ details: fresh }), ASOF)).toEqual(['bob']);
    const again = stateFromPlan(plan, state, ASOF);
    expect(again.users.find((u) => u.user === 'bob')?.state).toBe('removed');
    expect(again.users.find((u) => u.user === 'bob')?.history.map((h) => h.state)).toEqual([
      'mapped',
      'signed-in',
      'removed',
    ]);
  });
});
