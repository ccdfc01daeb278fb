import { randomBytes, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import samlify from 'samlify';
import { awsIdentityCandidates } from '../src/access/aws-identity.js';
import {
  AWS_SAML_AUDIENCE,
  AWS_SIGNIN_ENDPOINTS,
  awsAttributes,
  clampSessionDuration,
} from '../src/federation/saml/aws-attributes.js';
import {
  AUTHN_CONTEXT,
  buildSignedResponse,
  NAMEID_FORMAT,
  type SamlAttribute,
} from '../src/federation/saml/response.js';
import { type BenchEnv, REPO_ROOT } from './lib/env.js';
import { benchSigningKey } from './lib/keys.js';
import { throughputs } from './lib/measure.js';
import { type Row, ratioAtLeast, type Scenario } from './lib/scenario.js';

const IDP_ENTITY_ID = 'https://ferry.example.com/saml/metadata';
const ACS = AWS_SIGNIN_ENDPOINTS.aws;
const UPN = 'test-awsdeveloper@contoso.example';
/** The identity the console route derives (the registry lookup is a database read, left out here). */
const AWS_IDENTITY = awsIdentityCandidates('user:bench', UPN)[0]!;
const ROLE = {
  roleArn: 'arn:aws:iam::123456789012:role/Developer',
  providerArn: 'arn:aws:iam::123456789012:saml-provider/Ferry',
};
const TAGS = { department: 'Engineering' };

/** The AWS attributes the console route computes for one role (validation and normalisation included). */
function ferryAttributes(): SamlAttribute[] {
  return awsAttributes({
    roles: [ROLE],
    sessionName: AWS_IDENTITY,
    sourceIdentity: AWS_IDENTITY,
    sessionDurationSeconds: clampSessionDuration(undefined, 43_200, 43_200),
    principalTags: TAGS,
    transitiveTagKeys: Object.keys(TAGS),
  });
}

const URI = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';
const ATTR = 'https://aws.amazon.com/SAML/Attributes/';

/**
 * samlify's IdP made to issue what Ferry issues for the AWS console: the same six AWS attributes,
 * an AuthnStatement, a persistent NameID, the assertion and the response both signed (RSA-SHA256,
 * exclusive c14n) with the same RSA-3072 key, through samlify's documented template callback.
 */
function samlifyIssuer(privateKeyPem: string, certificatePem: string) {
  const authnStatement =
    '<saml:AuthnStatement AuthnInstant="{AuthnInstant}" SessionIndex="{SessionIndex}" SessionNotOnOrAfter="{SessionNotOnOrAfter}">' +
    '<saml:AuthnContext><saml:AuthnContextClassRef>{AuthnContextClassRef}</saml:AuthnContextClassRef></saml:AuthnContext>' +
    '</saml:AuthnStatement>';
  const context = samlify.SamlLib.defaultLoginResponseTemplate.context.replace(
    '{AuthnStatement}',
    authnStatement,
  );
  const attribute = (name: string, valueTag: string) => ({
    name: `${ATTR}${name}`,
    nameFormat: URI,
    valueTag,
    valueXsiType: 'xs:string',
  });
  const idp = samlify.IdentityProvider({
    entityID: IDP_ENTITY_ID,
    privateKey: privateKeyPem,
    signingCert: certificatePem,
    nameIDFormat: [NAMEID_FORMAT.persistent],
    singleSignOnService: [
      { Binding: samlify.Constants.namespace.binding.post, Location: `${IDP_ENTITY_ID}/sso` },
    ],
    // Only to keep samlify from warning about a missing logout endpoint; never used here.
    singleLogoutService: [
      { Binding: samlify.Constants.namespace.binding.redirect, Location: `${IDP_ENTITY_ID}/slo` },
    ],
    loginResponseTemplate: {
      context,
      attributes: [
        attribute('Role', 'role'),
        attribute('RoleSessionName', 'roleSessionName'),
        attribute('SourceIdentity', 'sourceIdentity'),
        attribute('SessionDuration', 'sessionDuration'),
        attribute('PrincipalTag:department', 'department'),
        attribute('TransitiveTagKeys', 'transitiveTagKeys'),
      ],
    },
  });
  const sp = samlify.ServiceProvider({
    entityID: AWS_SAML_AUDIENCE,
    assertionConsumerService: [{ Binding: samlify.Constants.namespace.binding.post, Location: ACS }],
    wantAssertionsSigned: true,
    wantMessageSigned: true,
  });
  const sessionIndex = randomUUID();
  const userId = randomUUID();
  return async (): Promise<string> => {
    const res = await idp.createLoginResponse(sp, {} as never, 'post', { email: userId }, (template) => {
      const now = new Date();
      const later = new Date(now.getTime() + 300_000);
      const id = `_${randomBytes(20).toString('hex')}`;
      const values: Record<string, string | null> = {
        ID: id,
        AssertionID: `_${randomBytes(20).toString('hex')}`,
        Destination: ACS,
        Audience: AWS_SAML_AUDIENCE,
        EntityID: AWS_SAML_AUDIENCE,
        SubjectRecipient: ACS,
        Issuer: IDP_ENTITY_ID,
        IssueInstant: now.toISOString(),
        AssertionConsumerServiceURL: ACS,
        StatusCode: samlify.Constants.StatusCode.Success,
        ConditionsNotBefore: new Date(now.getTime() - 60_000).toISOString(),
        ConditionsNotOnOrAfter: later.toISOString(),
        SubjectConfirmationDataNotOnOrAfter: later.toISOString(),
        NameIDFormat: NAMEID_FORMAT.persistent,
        NameID: userId,
        InResponseTo: null,
        AuthnInstant: now.toISOString(),
        SessionIndex: sessionIndex,
        SessionNotOnOrAfter: new Date(now.getTime() + 12 * 3_600_000).toISOString(),
        AuthnContextClassRef: AUTHN_CONTEXT.passwordProtectedTransport,
        attrRole: `${ROLE.roleArn},${ROLE.providerArn}`,
        attrRoleSessionName: AWS_IDENTITY,
        attrSourceIdentity: AWS_IDENTITY,
        attrSessionDuration: '43200',
        attrDepartment: TAGS.department,
        attrTransitiveTagKeys: 'department',
      };
      return { id, context: samlify.SamlLib.replaceTagsByValue(template, values as Record<string, string>) };
    });
    return (res as { context: string }).context;
  };
}

/**
 * SAML responses for the AWS console per second on one core: Ferry's buildSignedResponse (with the
 * AWS attribute contract computed as the console route does) against raw RSA-3072 signatures with the
 * same key, and against samlify's IdP issuing the equivalent response.
 */
export const samlAssertions: Scenario = {
  name: 'saml',
  title: 'SAML responses for AWS per second (RSA-3072) vs raw crypto.sign and samlify',
  async run(env: BenchEnv): Promise<Row[]> {
    const key = await benchSigningKey(env, 3072);
    const sessionIndex = randomUUID();
    const userId = randomUUID();
    const authnInstant = new Date();
    const ferry = (signResponse: boolean) => () =>
      buildSignedResponse(
        {
          issuer: IDP_ENTITY_ID,
          destination: ACS,
          recipient: ACS,
          audience: AWS_SAML_AUDIENCE,
          nameId: { value: userId, format: NAMEID_FORMAT.persistent },
          sessionIndex,
          authnInstant,
          authnContextClassRef: AUTHN_CONTEXT.passwordProtectedTransport,
          attributes: ferryAttributes(),
          now: new Date(),
          assertionLifetimeSeconds: 300,
          sessionNotOnOrAfter: new Date(Date.now() + 12 * 3_600_000),
          signResponse,
        },
        key,
      ).base64;
    const samlifyOnce = samlifyIssuer(key.material.privateKeyPem, key.certificatePem);
    // Check once that both sides issue the same shape: two signatures, six AWS attributes.
    const ours = Buffer.from(ferry(true)(), 'base64').toString('utf8');
    const theirs = Buffer.from(await samlifyOnce(), 'base64').toString('utf8');
    for (const [who, xml] of [
      ['ferry', ours],
      ['samlify', theirs],
    ] as const) {
      const signatures = xml.match(/<ds:Signature[ >]/g)?.length ?? 0;
      const attributes = xml.match(/<saml:Attribute /g)?.length ?? 0;
      if (signatures !== 2 || attributes !== 6 || !xml.includes('<saml:AuthnStatement')) {
        throw new Error(
          `saml: ${who} response is not comparable (${signatures} signatures, ${attributes} attributes)`,
        );
      }
    }
    env.log(`  response size: ferry ${ours.length} B, samlify ${theirs.length} B`);
    const signedInfo = randomBytes(700);
    const r = await throughputs(
      {
        ferry: ferry(true),
        ferryAssertionOnly: ferry(false),
        raw: () => sign('sha256', signedInfo, key.privateKey),
        samlify: samlifyOnce,
      },
      { runs: env.runs, runMs: 1000, warmupMs: 500 },
    );
    const unit = 'responses/s, 1 core';
    return [
      {
        scenario: 'SAML response for AWS, as issued (assertion signed, RSA-3072)',
        unit,
        better: 'higher',
        ferry: r.ferryAssertionOnly,
        reference: r.raw,
        referenceName: 'raw crypto.sign RSA-3072, same key',
        goal: ratioAtLeast(0.6),
        note: 'the AWS console path signs the Assertion only (AWS verifies that signature): one RSA operation per sign-in',
      },
      {
        scenario: 'SAML response, assertion and response signed (SP-initiated)',
        unit,
        better: 'higher',
        ferry: r.ferry,
        reference: r.raw,
        referenceName: 'raw crypto.sign RSA-3072, same key',
        goal: ratioAtLeast(0.45),
        note: 'two RSA operations per response, so 0.5 is the ceiling against one raw signature',
      },
      {
        scenario: 'SAML response vs samlify (both signed twice)',
        unit,
        better: 'higher',
        ferry: r.ferry,
        reference: r.samlify,
        referenceName: `samlify ${samlifyVersion()} IdP, same response, same key`,
        goal: ratioAtLeast(2),
        note: 'Ferry writes the XML in canonical form and signs it directly; samlify parses and canonicalises through xml-crypto',
      },
    ];
  },
};

function samlifyVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'samlify', 'package.json'), 'utf8'));
  return String((pkg as { version?: unknown }).version ?? '?');
}
