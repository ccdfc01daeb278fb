import { describe, expect, it } from 'vitest';
import {
  decodePolicyDocument,
  type PolicyDocument,
  trustedSamlProviders,
  UnreadablePolicyDocument,
  withSamlTrust,
} from './trust-policy.js';

const ARN = 'arn:aws:iam::123456789012:saml-provider/Ferry';
const AUD = 'https://signin.aws.amazon.com/saml';
const ALL_ACTIONS = ['sts:AssumeRoleWithSAML', 'sts:SetSourceIdentity', 'sts:TagSession'];
const OURS = {
  Effect: 'Allow',
  Principal: { Federated: ARN },
  Action: ALL_ACTIONS,
  Condition: { StringEquals: { 'SAML:aud': AUD } },
};
const EC2 = { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' };

function doc(...statements: Array<Record<string, unknown>>): PolicyDocument {
  return { Version: '2012-10-17', Statement: statements };
}

describe('decodePolicyDocument', () => {
  it('reads the URL-encoded JSON real IAM returns', () => {
    const encoded = encodeURIComponent(JSON.stringify(doc(EC2)));
    expect(encoded.startsWith('%7B')).toBe(true);
    expect(decodePolicyDocument(encoded)).toEqual(doc(EC2));
  });

  it('reads plain JSON, keeping a literal % intact', () => {
    const withPercent = { ...EC2, Condition: { StringLike: { 'aws:PrincipalTag/x': '100%25' } } };
    expect(decodePolicyDocument(JSON.stringify(doc(withPercent)))).toEqual(doc(withPercent));
  });

  it('turns a single Statement object into an array', () => {
    expect(decodePolicyDocument(JSON.stringify({ Version: '2012-10-17', Statement: EC2 }))).toEqual(doc(EC2));
  });

  it('refuses what is not a policy document', () => {
    for (const raw of ['', 'not json', '%7B', '[]', '{"Statement": 3}', '{"Statement": ["x"]}']) {
      expect(() => decodePolicyDocument(raw), raw).toThrow(UnreadablePolicyDocument);
    }
  });
});

describe('withSamlTrust', () => {
  it('gives a new role a policy with only the SAML statement', () => {
    expect(withSamlTrust(undefined, ARN, AUD)).toEqual({ document: doc(OURS), changed: true });
  });

  it('appends the statement after unrelated ones, without modifying its input', () => {
    const input = doc(EC2);
    const snapshot = structuredClone(input);
    expect(withSamlTrust(input, ARN, AUD)).toEqual({ document: doc(EC2, OURS), changed: true });
    expect(input).toEqual(snapshot);
  });

  it('leaves a satisfying statement alone, with its extra conditions, wildcard actions and audiences', () => {
    const stricter = {
      ...OURS,
      Action: ['sts:AssumeRoleWith*', 'STS:setsourceidentity', 'sts:TagSession'],
      Condition: {
        StringEquals: { 'saml:AUD': ['https://us-east-1.signin.aws.amazon.com/saml', AUD] },
        StringLike: { 'SAML:sub': '*@contoso.example' },
      },
    };
    expect(withSamlTrust(doc(EC2, stricter), ARN, AUD)).toEqual({
      document: doc(EC2, stricter),
      changed: false,
    });
    const allSts = { ...OURS, Action: 'sts:*' };
    expect(withSamlTrust(doc(allSts), ARN, AUD).changed).toBe(false);
  });

  it('adds the missing actions and audience to the provider-only statement, keeping the rest', () => {
    const regional = {
      Sid: 'Console',
      Effect: 'Allow',
      Principal: { Federated: [ARN] },
      Action: 'sts:AssumeRoleWithSAML',
      Condition: {
        StringEquals: { 'saml:aud': 'https://us-east-1.signin.aws.amazon.com/saml', 'SAML:iss': 'https://x' },
      },
    };
    const { document, changed } = withSamlTrust(doc(regional, EC2), ARN, AUD);
    expect(changed).toBe(true);
    expect(document.Statement).toEqual([
      {
        ...regional,
        Action: ALL_ACTIONS,
        Condition: {
          StringEquals: {
            'SAML:iss': 'https://x',
            'SAML:aud': ['https://us-east-1.signin.aws.amazon.com/saml', AUD],
          },
        },
      },
      EC2,
    ]);
  });

  it('does not take over statements shared with other principals, Deny or NotAction statements', () => {
    const shared = {
      ...OURS,
      Principal: { Federated: ARN, AWS: 'arn:aws:iam::123456789012:root' },
      Action: 'sts:AssumeRoleWithSAML',
    };
    const deny = { ...OURS, Effect: 'Deny' };
    const notAction = { Effect: 'Allow', Principal: { Federated: ARN }, NotAction: 'iam:*' };
    for (const other of [shared, deny, notAction]) {
      expect(withSamlTrust(doc(other), ARN, AUD)).toEqual({ document: doc(other, OURS), changed: true });
    }
  });

  it('adds a statement for a second provider next to the first', () => {
    const other = 'arn:aws:iam::123456789012:saml-provider/Old';
    const old = { ...OURS, Principal: { Federated: other } };
    expect(withSamlTrust(doc(old), ARN, AUD).document).toEqual(doc(old, OURS));
  });

  it('fills in a missing Version', () => {
    expect(withSamlTrust({ Statement: [OURS] }, ARN, AUD)).toEqual({ document: doc(OURS), changed: false });
  });
});

describe('trustedSamlProviders', () => {
  it('names SAML providers allowed AssumeRoleWithSAML, and nothing else', () => {
    const oidc = {
      Effect: 'Allow',
      Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com' },
      Action: 'sts:AssumeRoleWithWebIdentity',
    };
    const gov = 'arn:aws-us-gov:iam::123456789012:saml-provider/Gov';
    const wildcard = { Effect: 'Allow', Principal: { Federated: [gov, ARN] }, Action: 'sts:*' };
    const tagOnly = {
      ...OURS,
      Principal: { Federated: 'arn:aws:iam::123456789012:saml-provider/T' },
      Action: 'sts:TagSession',
    };
    const denied = {
      ...OURS,
      Effect: 'Deny',
      Principal: { Federated: 'arn:aws:iam::123456789012:saml-provider/D' },
    };
    expect(trustedSamlProviders(doc(EC2, oidc, tagOnly, denied))).toEqual([]);
    expect(trustedSamlProviders(doc(EC2, OURS, wildcard))).toEqual([ARN, gov]);
  });
});
