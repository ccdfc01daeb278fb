import { describe, expect, it } from 'vitest';
import {
  ACCOUNT,
  attributed,
  cloudTrailRecord,
  consoleLogin,
  ferryIssued,
  identities,
} from '../../../test/support/cloudtrail-records.js';
import { REVOCATION_POLICY_NAME } from '../../aws/revocation-policy.js';
import {
  accessDenied,
  cloudTrailDisabled,
  federationTampering,
  iamCredentialsCreated,
  type ManagedEstate,
  observeRecord,
  revokedCredentialsUsed,
  rootActivity,
  sessionOutsideFerry,
} from './cloudtrail-rules.js';

const DEVELOPER = `arn:aws:iam::${ACCOUNT}:role/Developer`;
const SAML_PROVIDER = `arn:aws:iam::${ACCOUNT}:saml-provider/Ferry`;
const estate: ManagedEstate = {
  managedRoleArns: new Set([DEVELOPER, `arn:aws:iam::${ACCOUNT}:role/Administrator`]),
  samlProviderArns: new Set([SAML_PROVIDER]),
  oidcProviderPaths: new Set(['ferry.contoso.example']),
  denyPolicyName: REVOCATION_POLICY_NAME,
  ferryPrincipals: [`arn:aws:sts::${ACCOUNT}:assumed-role/FerryService/*`],
  revocations: [],
};
const developerSession = (o: { sourceIdentity?: string; creationDate?: string } = {}) =>
  identities.assumedRole({ role: 'Developer', session: 'test-awsdeveloper', ...o });
const iam = (
  eventName: string,
  userIdentity: Record<string, unknown>,
  requestParameters: Record<string, unknown>,
  more = {},
) =>
  cloudTrailRecord({ eventName, eventSource: 'iam.amazonaws.com', userIdentity, requestParameters, ...more });

describe('root activity', () => {
  it('raises on a root console sign-in and on a root API call', () => {
    const signin = rootActivity(attributed(consoleLogin(identities.root())));
    expect(signin).toMatchObject({ rule: 'root-activity', subject: `root:${ACCOUNT}`, account: ACCOUNT });
    expect(signin!.title).toContain('console sign-in succeeded');
    const call = rootActivity(
      attributed(
        cloudTrailRecord({
          eventName: 'ListBuckets',
          eventSource: 's3.amazonaws.com',
          userIdentity: identities.root(),
          readOnly: true,
        }),
      ),
    );
    expect(call!.title).toBe(`root user called ListBuckets in account ${ACCOUNT}`);
  });

  it('stays quiet for IAM users, roles and AWS services acting for the account', () => {
    expect(rootActivity(attributed(consoleLogin(identities.iamUser('alice'))))).toBeNull();
    expect(
      rootActivity(
        attributed(
          cloudTrailRecord({
            eventName: 'ListBuckets',
            eventSource: 's3.amazonaws.com',
            userIdentity: developerSession(),
          }),
        ),
      ),
    ).toBeNull();
    const service = { ...identities.root(), invokedBy: 'cloudformation.amazonaws.com' };
    expect(
      rootActivity(
        attributed(
          cloudTrailRecord({
            eventName: 'CreateBucket',
            eventSource: 's3.amazonaws.com',
            userIdentity: service,
          }),
        ),
      ),
    ).toBeNull();
  });
});

describe('IAM credentials created', () => {
  it.each([
    ['CreateUser', { userName: 'backdoor' }, 'IAM user created for backdoor'],
    ['CreateAccessKey', { userName: 'ci-bot' }, 'access key created for ci-bot'],
    [
      'CreateLoginProfile',
      { userName: 'ci-bot', passwordResetRequired: false },
      'console password (login profile) created for ci-bot',
    ],
  ])('raises on %s', (eventName, params, title) => {
    const f = iamCredentialsCreated(attributed(iam(eventName, identities.iamUser('mallory'), params)));
    expect(f?.rule).toBe('iam-credentials-created');
    expect(f!.title).toContain(title);
    expect(f!.details.actor).toBe(`arn:aws:iam::${ACCOUNT}:user/mallory`);
  });

  it('ignores refused attempts and other IAM calls', () => {
    expect(
      iamCredentialsCreated(
        attributed(iam('CreateUser', developerSession(), { userName: 'x' }, { errorCode: 'AccessDenied' })),
      ),
    ).toBeNull();
    expect(
      iamCredentialsCreated(attributed(iam('CreateRole', developerSession(), { roleName: 'x' }))),
    ).toBeNull();
    expect(iamCredentialsCreated(attributed(iam('ListUsers', developerSession(), {})))).toBeNull();
  });
});

describe('sessions on Ferry-managed roles that Ferry did not issue', () => {
  const assume = (
    eventName: string,
    userIdentity: Record<string, unknown>,
    params: Record<string, unknown>,
  ) =>
    cloudTrailRecord({
      eventName,
      eventSource: 'sts.amazonaws.com',
      userIdentity,
      requestParameters: params,
      responseElements: {
        credentials: { accessKeyId: 'ASIANEWKEY0000000001', expiration: 'Dec 6, 2026, 10:00:00 AM' },
      },
    });

  it('raises on AssumeRole by an IAM user, SAML from another provider, and a console sign-in on the role', () => {
    const byUser = sessionOutsideFerry(
      attributed(
        assume('AssumeRole', identities.iamUser('mallory'), { roleArn: DEVELOPER, roleSessionName: 'x' }),
      ),
      estate,
    );
    expect(byUser).toMatchObject({ rule: 'session-outside-ferry', subject: DEVELOPER });
    const otherIdp = `arn:aws:iam::${ACCOUNT}:saml-provider/Okta`;
    const saml = sessionOutsideFerry(
      attributed(
        assume('AssumeRoleWithSAML', identities.samlUser({ user: 'eve', provider: otherIdp }), {
          roleArn: DEVELOPER,
          principalArn: otherIdp,
          roleSessionName: 'eve',
        }),
      ),
      estate,
    );
    expect(saml?.rule).toBe('session-outside-ferry');
    const console = sessionOutsideFerry(attributed(consoleLogin(developerSession())), estate);
    expect(console?.title).toContain('console sign-in on Ferry-managed role');
  });

  it("stays quiet for Ferry's SAML and OIDC sessions, Ferry-attributed chaining, and roles Ferry does not manage", () => {
    const viaFerry = assume(
      'AssumeRoleWithSAML',
      identities.samlUser({ user: 'test-awsdeveloper', provider: SAML_PROVIDER }),
      { roleArn: DEVELOPER, principalArn: SAML_PROVIDER },
    );
    expect(sessionOutsideFerry(attributed(viaFerry), estate)).toBeNull();
    const web = assume(
      'AssumeRoleWithWebIdentity',
      identities.webIdentityUser({ user: 'wl', provider: 'ferry.contoso.example' }),
      { roleArn: DEVELOPER },
    );
    expect(sessionOutsideFerry(attributed(web), estate)).toBeNull();
    const chained = assume('AssumeRole', developerSession({ sourceIdentity: 'test-awsdeveloper' }), {
      roleArn: DEVELOPER,
    });
    expect(
      sessionOutsideFerry(attributed(chained, ferryIssued('u1', 'test-awsdeveloper')), estate),
    ).toBeNull();
    const other = assume('AssumeRole', identities.iamUser('ops'), {
      roleArn: `arn:aws:iam::${ACCOUNT}:role/Unmanaged`,
    });
    expect(sessionOutsideFerry(attributed(other), estate)).toBeNull();
    const ferryConsole = attributed(
      consoleLogin(developerSession({ sourceIdentity: 'test-awsdeveloper' })),
      ferryIssued('u1', 'test-awsdeveloper'),
    );
    expect(sessionOutsideFerry(ferryConsole, estate)).toBeNull();
  });
});

describe("changes to Ferry's trust, identity providers and deny policies", () => {
  it('raises on a trust policy change, a SAML provider update or deletion, an OIDC provider change and a deny policy deleted by someone else', () => {
    const trust = federationTampering(
      attributed(
        iam('UpdateAssumeRolePolicy', identities.iamUser('mallory'), {
          roleName: 'Developer',
          policyDocument: '{}',
        }),
      ),
      estate,
    );
    expect(trust).toMatchObject({ rule: 'federation-tampering', subject: DEVELOPER });
    for (const eventName of ['UpdateSAMLProvider', 'DeleteSAMLProvider'])
      expect(
        federationTampering(
          attributed(iam(eventName, identities.iamUser('mallory'), { sAMLProviderArn: SAML_PROVIDER })),
          estate,
        )?.subject,
      ).toBe(SAML_PROVIDER);
    const oidc = `arn:aws:iam::${ACCOUNT}:oidc-provider/ferry.contoso.example`;
    expect(
      federationTampering(
        attributed(iam('DeleteOpenIDConnectProvider', identities.root(), { openIDConnectProviderArn: oidc })),
        estate,
      )?.subject,
    ).toBe(oidc);
    const deny = federationTampering(
      attributed(
        iam('DeleteRolePolicy', identities.iamUser('mallory'), {
          roleName: 'Developer',
          policyName: REVOCATION_POLICY_NAME,
        }),
      ),
      estate,
    );
    expect(deny!.title).toContain('deleted outside Ferry');
  });

  it("stays quiet for unmanaged roles, other providers, other inline policies and Ferry's own deny writes", () => {
    expect(
      federationTampering(
        attributed(iam('UpdateAssumeRolePolicy', identities.iamUser('ops'), { roleName: 'Unmanaged' })),
        estate,
      ),
    ).toBeNull();
    expect(
      federationTampering(
        attributed(
          iam('UpdateSAMLProvider', identities.iamUser('ops'), {
            sAMLProviderArn: `arn:aws:iam::${ACCOUNT}:saml-provider/Okta`,
          }),
        ),
        estate,
      ),
    ).toBeNull();
    expect(
      federationTampering(
        attributed(
          iam('PutRolePolicy', identities.iamUser('ops'), { roleName: 'Developer', policyName: 'S3Read' }),
        ),
        estate,
      ),
    ).toBeNull();
    const ferry = identities.assumedRole({ role: 'FerryService', session: 'ferry' });
    expect(
      federationTampering(
        attributed(
          iam('PutRolePolicy', ferry, { roleName: 'Developer', policyName: REVOCATION_POLICY_NAME }),
        ),
        estate,
      ),
    ).toBeNull();
  });
});

describe('CloudTrail stopped or deleted', () => {
  const ct = (eventName: string, requestParameters: Record<string, unknown>) =>
    attributed(
      cloudTrailRecord({
        eventName,
        eventSource: 'cloudtrail.amazonaws.com',
        userIdentity: identities.iamUser('mallory'),
        requestParameters,
      }),
    );
  const trail = `arn:aws:cloudtrail:us-east-1:${ACCOUNT}:trail/org-trail`;

  it('raises on StopLogging, DeleteTrail, UpdateTrail and event selectors that log nothing', () => {
    for (const name of ['StopLogging', 'DeleteTrail', 'UpdateTrail'])
      expect(cloudTrailDisabled(ct(name, { name: trail }))?.subject).toBe(`${ACCOUNT}:${trail}`);
    const off = ct('PutEventSelectors', {
      trailName: trail,
      eventSelectors: [{ readWriteType: 'All', includeManagementEvents: false, dataResources: [] }],
    });
    expect(cloudTrailDisabled(off)?.title).toContain('event selectors turned off');
  });

  it('stays quiet for StartLogging, CreateTrail and selectors that still log management events', () => {
    expect(cloudTrailDisabled(ct('StartLogging', { name: trail }))).toBeNull();
    expect(cloudTrailDisabled(ct('CreateTrail', { name: trail }))).toBeNull();
    const on = ct('PutEventSelectors', {
      trailName: trail,
      eventSelectors: [{ readWriteType: 'All', includeManagementEvents: true, dataResources: [] }],
    });
    expect(cloudTrailDisabled(on)).toBeNull();
  });
});

describe('activity with revoked credentials', () => {
  const revoked: ManagedEstate = {
    ...estate,
    revocations: [
      {
        account: ACCOUNT,
        role: 'Developer',
        sourceIdentity: 'test-awsdeveloper',
        userId: 'u1',
        cutoff: new Date('2026-12-06T08:30:00Z'),
      },
    ],
  };
  const call = (eventTime: string, creationDate: string) =>
    attributed(
      cloudTrailRecord({
        eventName: 'ListBuckets',
        eventSource: 's3.amazonaws.com',
        eventTime,
        userIdentity: developerSession({ sourceIdentity: 'test-awsdeveloper', creationDate }),
      }),
      ferryIssued('u1', 'test-awsdeveloper'),
    );

  it('raises on a call after the cutoff with a session issued before it', () => {
    const f = revokedCredentialsUsed(call('2026-12-06T09:00:00Z', '2026-12-06T08:00:00Z'), revoked);
    expect(f).toMatchObject({ rule: 'revoked-credentials-used', subject: 'test-awsdeveloper' });
    expect(f!.details.cutoff).toBe('2026-12-06T08:30:00.000Z');
  });

  it('stays quiet before the cutoff, for a session issued after it, and for other people', () => {
    expect(revokedCredentialsUsed(call('2026-12-06T08:20:00Z', '2026-12-06T08:00:00Z'), revoked)).toBeNull();
    expect(revokedCredentialsUsed(call('2026-12-06T09:00:00Z', '2026-12-06T08:45:00Z'), revoked)).toBeNull();
    expect(revokedCredentialsUsed(call('2026-12-06T09:00:00Z', '2026-12-06T08:00:00Z'), estate)).toBeNull();
  });
});

describe('access denied counts', () => {
  it('counts AccessDenied per person, and nothing for successes or other errors', () => {
    const denied = attributed(
      cloudTrailRecord({
        eventName: 'GetObject',
        eventSource: 's3.amazonaws.com',
        userIdentity: developerSession({ sourceIdentity: 'test-awsdeveloper' }),
        errorCode: 'AccessDenied',
      }),
      ferryIssued('u1', 'test-awsdeveloper'),
    );
    expect(accessDenied(denied)).toMatchObject({ rule: 'access-denied-spike', subject: 'test-awsdeveloper' });
    expect(
      accessDenied(
        attributed(
          cloudTrailRecord({
            eventName: 'GetObject',
            eventSource: 's3.amazonaws.com',
            userIdentity: developerSession(),
          }),
        ),
      ),
    ).toBeNull();
    expect(
      accessDenied(
        attributed(
          cloudTrailRecord({
            eventName: 'GetObject',
            eventSource: 's3.amazonaws.com',
            userIdentity: developerSession(),
            errorCode: 'NoSuchKey',
          }),
        ),
      ),
    ).toBeNull();
  });

  it('observeRecord gathers every rule of a record', () => {
    const obs = observeRecord(
      attributed(iam('CreateUser', identities.root(), { userName: 'backdoor' })),
      estate,
    );
    expect(obs.map((o) => (o.kind === 'finding' ? o.finding.rule : o.count.rule)).sort()).toEqual([
      'iam-credentials-created',
      'root-activity',
    ]);
  });
});
