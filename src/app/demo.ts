import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEMO_AWS_ACCOUNT, ensureDemoAwsAccount } from '../aws/demo-account.js';
import { DEMO_CONSOLE_PATH, demoConsole } from '../aws/demo-console.js';
import { ensureIdentityStoreGroups, ensureIdentityStoreUsers } from '../aws/identity-center/sso-admin.js';
import { type LocalAws, motoAvailable, startMotoServer } from '../aws/moto-server.js';
import { setupSamlAccount } from '../aws/saml-setup.js';
import { totpCode } from '../identity/totp.js';
import { loadConfig } from './config.js';
import { type DemoCredentials, ensureDemoTenant, writeCredentials } from './demo-tenant.js';
import { startWhoami } from './demo-whoami.js';
import { ensureMasterKeyFile } from './master-key.js';
import { type RunningFerry, startFerry } from './start.js';

/**
 * `npm run demo`: the whole product on one machine. Embedded SQLite under ./data, the demo tenant,
 * moto as the local AWS (when installed and no AWS endpoint is configured). Ctrl-C stops it all.
 */
async function demo(): Promise<void> {
  const started = performance.now();
  // The pinned AWS SDK supports Node 20; its notice about future releases would only clutter the banner.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dataDir = resolve(process.env.FERRY_DEMO_DATA ?? 'data');
  mkdirSync(dataDir, { recursive: true });
  const masterKeyFile = join(dataDir, 'master.key');
  ensureMasterKeyFile(masterKeyFile);
  const { config } = loadConfig(undefined, {
    FERRY_DATABASE_URL: `sqlite:${join(dataDir, 'ferry.db')}`,
    FERRY_MASTER_KEY_FILE: masterKeyFile,
    FERRY_LISTEN: '127.0.0.1:7070',
    FERRY_PUBLIC_URL: 'http://127.0.0.1:7070',
    FERRY_LOG_LEVEL: 'warn',
    ...process.env,
  });

  // Demo users sign in with a password and TOTP: Ferry Administrator's standing demand for a security
  // key would leave Test-AWSAdmin with no console on first sign-in. A real installation keeps it.
  config.adminRoles.builtInRequirements = false;
  // Alert sinks tried out with the demo are receivers on this machine (a webhook catcher, a local SMTP
  // server): loopback, which a real installation refuses (docs/activity.md "Where alerts may go").
  config.alerts.allowPrivateTargets = true;

  // The identity-aware proxy beside the server; the demo's internal app is served at localhost (a
  // different host from Ferry's 127.0.0.1, so the browser keeps the cookies apart).
  config.proxy.listen ??= config.listen === '127.0.0.1:7070' ? '127.0.0.1:7443' : '127.0.0.1:0';
  let whoami: Awaited<ReturnType<typeof startWhoami>> | null = null;
  let localAws: LocalAws | null = null;
  let ferry: RunningFerry | null = null;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping Ferry and the local AWS…\n');
    await ferry?.stop().catch(() => {});
    await whoami?.close().catch(() => {});
    await localAws?.stop().catch(() => {});
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));

  try {
    const region = process.env.AWS_REGION ?? 'us-east-1';
    const configuredEndpoint = process.env.FERRY_AWS_ENDPOINT ?? process.env.AWS_ENDPOINT_URL;
    let aws: DemoCredentials['aws'] = null;
    if (configuredEndpoint || motoAvailable()) {
      if (!configuredEndpoint) localAws = await startMotoServer();
      const endpoint = configuredEndpoint ?? localAws!.endpoint;
      const account = await ensureDemoAwsAccount({ endpoint, region });
      aws = {
        endpoint,
        region,
        accountId: account.accountId,
        accountName: DEMO_AWS_ACCOUNT.name,
        roles: account.roles.map((r) => ({ name: r.name, arn: r.arn })),
      };
    } else {
      process.stdout.write('note: moto_server is not on PATH, so the demo runs without a local AWS\n');
    }

    // Offboarding revokes live sessions on this same local AWS.
    if (aws?.endpoint) config.aws = { ...config.aws, endpoint: aws.endpoint, region: aws.region };
    // The local AWS has no console: its SAML sign-ins go to a stand-in page that calls moto's STS.
    const awsDemo = aws?.endpoint ? { endpoint: aws.endpoint, region: aws.region } : null;
    ferry = await startFerry({
      config,
      configSource: 'demo',
      demo: awsDemo
        ? {
            awsConsoleSigninUrl: `${config.publicUrl.replace(/\/$/, '')}${DEMO_CONSOLE_PATH}`,
            extraRoutes: async (app) =>
              app.register(demoConsole, { endpoint: awsDemo.endpoint, region: awsDemo.region }),
          }
        : undefined,
    });
    const credentialsFile = join(dataDir, 'demo-credentials.json');
    const tenant = await ensureDemoTenant(ferry.services, credentialsFile);
    if (aws?.endpoint) {
      // What `ferry aws setup-account --account Account1` does: the IAM SAML provider from Ferry's
      // metadata, and the mapped roles trusting it.
      const metadata = await fetch(`${ferry.url}/saml/metadata`).then((r) => r.text());
      await setupSamlAccount({
        endpoint: aws.endpoint,
        region: aws.region,
        accountId: aws.accountId,
        partition: 'aws',
        providerName: 'Ferry',
        metadataXml: metadata,
        roles: [{ name: 'Administrator' }, { name: 'Developer' }],
      });
    }
    let permissionSets = '';
    if (aws?.endpoint) {
      // IAM Identity Center in the local AWS: the demo groups in its identity store (Ferry's SCIM push
      // does this against AWS), then the demo's ReadOnly permission set and its assignment.
      await ensureIdentityStoreGroups({ endpoint: aws.endpoint, region: aws.region }, [
        'AWS-Account1-Administrators',
        'AWS-Account1-Developers',
      ]);
      // ... and the demo people, so a developer's activation of AdministratorAccess can be assigned
      await ensureIdentityStoreUsers({ endpoint: aws.endpoint, region: aws.region }, tenant.users);
      const synced = await ferry.services.permissionSetSync.apply({
        actor: { type: 'operator', name: 'demo' },
      });
      const failed = synced.applied.filter((s) => !s.ok).length + synced.problems.length;
      if (failed > 0)
        process.stdout.write(`note: ${failed} Identity Center item(s) failed; run \`ferry iic drift\`\n`);
      permissionSets =
        'ReadOnly → AWS-Account1-Developers in Account1; AdministratorAccess just in time (approval)';
    }
    whoami = await startWhoami();
    const proxiedUrl = `http://localhost:${new URL(ferry.proxyUrl!).port}`;
    const groups = await Promise.all(
      ['AWS-Account1-Administrators', 'AWS-Account1-Developers'].map(async (name) => {
        const g = await ferry!.services.groups.get(name);
        return { type: 'group' as const, id: g.id, name: g.displayName };
      }),
    );
    await ferry.services.proxyApps.set({ actor: { type: 'operator', name: 'demo' } }, 'whoami', {
      upstream: whoami.url,
      url: proxiedUrl,
      groups,
    });
    const credentials: DemoCredentials = {
      ferryUrl: ferry.url,
      ...tenant,
      aws,
      proxiedApp: `${proxiedUrl}/`,
      // (was computed and never passed on, so the banner's Identity Center line never showed)
      ...(permissionSets ? { permissionSets } : {}),
    };
    writeCredentials(credentialsFile, credentials);
    process.stdout.write(banner(credentials, credentialsFile, performance.now() - started));
  } catch (err) {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    await stop(1);
  }
}

function banner(c: DemoCredentials, file: string, ms: number): string {
  const now = new Date();
  const lines = [
    '',
    `Ferry demo is running (ready in ${(ms / 1000).toFixed(1)} s). Press Ctrl-C to stop everything.`,
    '',
    `  Sign in        ${c.ferryUrl}/signin`,
    `  Web console    ${c.ferryUrl}/   (your access; ${c.ferryUrl}/admin for administrators)`,
    `  AWS console    ${c.ferryUrl}/apps/aws-console   (SAML sign-in to the AWS console)`,
    `  SAML metadata  ${c.ferryUrl}/saml/metadata`,
    `  OpenID         ${c.ferryUrl}/.well-known/openid-configuration`,
    `  Your account   ${c.ferryUrl}/account`,
    `  SSH CA         ${c.ferryUrl}/api/v1/ssh/ca.pub   ·   KRL ${c.ferryUrl}/api/v1/ssh/krl   (both groups → ec2-user on every host)`,
    ...(c.proxiedApp
      ? [`  Proxied app    ${c.proxiedApp}   (an internal "whoami" app behind the identity-aware proxy)`]
      : []),
    ...(c.permissionSets
      ? [`  Identity Center ${c.permissionSets}   (FERRY_TOKEN=… npx ferry iic drift)`]
      : []),
    `  Admin API      ${c.ferryUrl}/api/docs   (token below)`,
    `  Health         ${c.ferryUrl}/readyz   ·   metrics ${c.ferryUrl}/metrics`,
    c.aws
      ? `  Local AWS      ${c.aws.endpoint}  (account ${c.aws.accountId} "${c.aws.accountName}", roles ${c.aws.roles.map((r) => r.name).join(', ')})`
      : '  Local AWS      not running',
    '',
    'Demo users (password, and the TOTP secret to add to an authenticator app):',
    ...c.users.flatMap((u) => [
      `  ${u.displayName.padEnd(18)} ${u.userName}`,
      `  ${''.padEnd(18)} password ${u.password}   TOTP secret ${u.totpSecret}   (code now: ${totpCode(u.totpSecret, now)})`,
      `  ${''.padEnd(18)} groups ${u.groups.join(', ')}`,
    ]),
    '',
    `Admin API token: ${c.adminToken}`,
    `All of this is also in ${file}.`,
    '',
    'Next, try:',
    `  open ${c.ferryUrl}/signin and sign in as ${c.users[1]?.userName ?? ''}`,
    `  npx ferry login --server ${c.ferryUrl} --user ${c.users[1]?.userName ?? ''}   (password, then the code)`,
    ...(c.aws
      ? ['  npx ferry aws config && aws sts get-caller-identity --profile ferry-account1-developer']
      : []),
    `  FERRY_TOKEN=${c.adminToken} npx ferry users list`,
    `  FERRY_TOKEN=${c.adminToken} npx ferry audit tail`,
    `  FERRY_TOKEN=${c.adminToken} npx ferry ssh logins list`,
    '',
    'Just-in-time elevation (Developers may activate Administrator for 1h, approved by an Administrator):',
    `  npx ferry login --server ${c.ferryUrl} --user ${c.users[1]?.userName ?? ''}`,
    `  npx ferry request --account Account1 --role Administrator --duration 1h --reason "INC-1 restore" --wait`,
    `  (as ${c.users[0]?.userName ?? ''}, with FERRY_CONFIG_DIR set to another directory) npx ferry activations --pending; npx ferry approve ID`,
    ...(c.permissionSets
      ? [
          '  the same for the AdministratorAccess permission set (an Identity Center account assignment while it lasts):',
          '  npx ferry request --target aws:Account1/permission-set/AdministratorAccess --duration 1h --reason "INC-2" --wait',
        ]
      : []),
    '',
  ];
  return `${lines.join('\n')}\n`;
}

await demo();
