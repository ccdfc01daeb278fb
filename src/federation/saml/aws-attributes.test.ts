import { describe, expect, it } from 'vitest';
import {
  AWS_ATTRIBUTE,
  AWS_SAML_AUDIENCE,
  type AwsAttributesInput,
  awsAttributes,
  awsSignInEndpoint,
  clampSessionDuration,
  InvalidAwsAttribute,
} from './aws-attributes.js';

const DEV = {
  roleArn: 'arn:aws:iam::123456789012:role/Developer',
  providerArn: 'arn:aws:iam::123456789012:saml-provider/Ferry',
};
const ADMIN = {
  roleArn: 'arn:aws:iam::123456789012:role/Administrator',
  providerArn: 'arn:aws:iam::123456789012:saml-provider/Ferry',
};

describe('constants', () => {
  it('names the AWS audience and each partition sign-in endpoint', () => {
    expect(AWS_SAML_AUDIENCE).toBe('urn:amazon:webservices');
    expect(awsSignInEndpoint('aws')).toBe('https://signin.aws.amazon.com/saml');
    expect(awsSignInEndpoint('aws-us-gov')).toBe('https://signin.amazonaws-us-gov.com/saml');
    expect(awsSignInEndpoint('aws-cn')).toBe('https://signin.amazonaws.cn/saml');
    expect(() => awsSignInEndpoint('aws-iso' as 'aws')).toThrow(InvalidAwsAttribute);
  });
});

describe('clampSessionDuration', () => {
  it('takes the request within both limits, or the longest allowed when none is asked', () => {
    expect(clampSessionDuration(undefined, 3600, 28_800)).toBe(3600);
    expect(clampSessionDuration(undefined, 43_200, 7200)).toBe(7200);
    expect(clampSessionDuration(1800, 3600, 28_800)).toBe(1800);
    expect(clampSessionDuration(1800.9, 3600, 28_800)).toBe(1800);
  });

  it('never goes above either limit nor outside 900..43200', () => {
    expect(clampSessionDuration(7200, 3600, 28_800)).toBe(3600);
    expect(clampSessionDuration(7200, 43_200, 1800)).toBe(1800);
    expect(clampSessionDuration(60, 3600, 3600)).toBe(900);
    expect(clampSessionDuration(90_000, 86_400, 86_400)).toBe(43_200);
    for (const requested of [undefined, 0, 899, 900, 1000, 3599, 3600, 5000, 50_000]) {
      for (const roleMax of [900, 3600, 43_200]) {
        for (const decisionMax of [900, 1200, 3600, 100_000]) {
          const d = clampSessionDuration(requested, roleMax, decisionMax);
          expect(d).toBeLessThanOrEqual(roleMax);
          expect(d).toBeLessThanOrEqual(decisionMax);
          expect(d).toBeGreaterThanOrEqual(900);
          expect(d).toBeLessThanOrEqual(43_200);
        }
      }
    }
  });

  it('throws when a limit leaves no valid duration', () => {
    expect(() => clampSessionDuration(undefined, 600, 3600)).toThrow(
      /role MaxSessionDuration \(600 s\) is below/,
    );
    expect(() => clampSessionDuration(undefined, 3600, 899)).toThrow(/access decision limit \(899 s\)/);
    expect(() => clampSessionDuration(Number.NaN, 3600, 3600)).toThrow(InvalidAwsAttribute);
    expect(() => clampSessionDuration(undefined, Number.NaN, 3600)).toThrow(InvalidAwsAttribute);
  });
});

describe('awsAttributes', () => {
  const base = (overrides: Partial<AwsAttributesInput> = {}): AwsAttributesInput => ({
    roles: [DEV],
    sessionName: 'test-awsdeveloper@contoso.example',
    sourceIdentity: 'test-awsdeveloper@contoso.example',
    sessionDurationSeconds: 3600,
    principalTags: { department: 'Engineering', costCenter: 'CC-1234' },
    transitiveTagKeys: ['department'],
    ...overrides,
  });

  it('writes the AWS contract: Role, RoleSessionName, SourceIdentity, SessionDuration, tags, transitive keys', () => {
    const attrs = awsAttributes(base({ roles: [DEV, ADMIN, DEV] }));
    expect(attrs.map((a) => [a.name, a.values])).toEqual([
      [
        'https://aws.amazon.com/SAML/Attributes/Role',
        [`${DEV.roleArn},${DEV.providerArn}`, `${ADMIN.roleArn},${ADMIN.providerArn}`],
      ],
      ['https://aws.amazon.com/SAML/Attributes/RoleSessionName', ['test-awsdeveloper@contoso.example']],
      ['https://aws.amazon.com/SAML/Attributes/SourceIdentity', ['test-awsdeveloper@contoso.example']],
      ['https://aws.amazon.com/SAML/Attributes/SessionDuration', ['3600']],
      ['https://aws.amazon.com/SAML/Attributes/PrincipalTag:department', ['Engineering']],
      ['https://aws.amazon.com/SAML/Attributes/PrincipalTag:costCenter', ['CC-1234']],
      ['https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys', ['department']],
    ]);
    for (const a of attrs) expect(a.nameFormat).toBe('urn:oasis:names:tc:SAML:2.0:attrname-format:uri');
  });

  it('leaves out what is not there: SourceIdentity, tags, transitive keys', () => {
    const attrs = awsAttributes(
      base({ sourceIdentity: undefined, principalTags: {}, transitiveTagKeys: [] }),
    );
    expect(attrs.map((a) => a.name)).toEqual([
      AWS_ATTRIBUTE.role,
      AWS_ATTRIBUTE.roleSessionName,
      AWS_ATTRIBUTE.sessionDuration,
    ]);
  });

  it('works in the other partitions', () => {
    const gov = {
      roleArn: 'arn:aws-us-gov:iam::123456789012:role/path/Ops',
      providerArn: 'arn:aws-us-gov:iam::123456789012:saml-provider/Ferry',
    };
    expect(awsAttributes(base({ roles: [gov] }))[0]!.values).toEqual([`${gov.roleArn},${gov.providerArn}`]);
  });

  it('refuses roles AWS would refuse', () => {
    expect(() => awsAttributes(base({ roles: [] }))).toThrow(/at least one role/);
    expect(() => awsAttributes(base({ roles: [{ ...DEV, roleArn: 'Developer' }] }))).toThrow(
      /not an IAM role ARN/,
    );
    expect(() => awsAttributes(base({ roles: [{ ...DEV, providerArn: DEV.roleArn }] }))).toThrow(
      /SAML provider ARN/,
    );
    const otherAccount = { ...DEV, providerArn: 'arn:aws:iam::210987654321:saml-provider/Ferry' };
    expect(() => awsAttributes(base({ roles: [otherAccount] }))).toThrow(/same account and partition/);
    const otherPartition = { ...DEV, providerArn: 'arn:aws-cn:iam::123456789012:saml-provider/Ferry' };
    expect(() => awsAttributes(base({ roles: [otherPartition] }))).toThrow(/same account and partition/);
  });

  it('refuses names that are not an AWS identity, and durations out of range', () => {
    expect(() => awsAttributes(base({ sessionName: 'has space@x' }))).toThrow(
      /RoleSessionName.*awsIdentityOf/,
    );
    expect(() => awsAttributes(base({ sourceIdentity: 'a'.repeat(65) }))).toThrow(/SourceIdentity/);
    expect(() => awsAttributes(base({ sessionDurationSeconds: 899 }))).toThrow(/SessionDuration/);
    expect(() => awsAttributes(base({ sessionDurationSeconds: 43_201 }))).toThrow(/SessionDuration/);
    expect(() => awsAttributes(base({ sessionDurationSeconds: 3600.5 }))).toThrow(/SessionDuration/);
  });

  it('accepts up to 50 tags, keys up to 128 and values up to 256 characters, in any script', () => {
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`key${i}`, `value ${i}`]));
    expect(awsAttributes(base({ principalTags: fifty, transitiveTagKeys: [] }))).toHaveLength(4 + 50);
    const edge = {
      ['k'.repeat(128)]: 'v'.repeat(256),
      'Kostenstelle:Zürich/1=a+b@c': 'Müller 東京',
      empty: '',
    };
    expect(() => awsAttributes(base({ principalTags: edge, transitiveTagKeys: [] }))).not.toThrow();
  });

  it('refuses tags AWS would refuse', () => {
    const tags = (principalTags: Record<string, string>, transitiveTagKeys: string[] = []) =>
      awsAttributes(base({ principalTags, transitiveTagKeys }));
    const fiftyOne = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`key${i}`, 'v']));
    expect(() => tags(fiftyOne)).toThrow(/51 session tags; AWS allows at most 50/);
    expect(() => tags({ ['k'.repeat(129)]: 'v' })).toThrow(/tag key must be 1 to 128/);
    expect(() => tags({ '': 'v' })).toThrow(/tag key/);
    expect(() => tags({ 'dept!': 'v' })).toThrow(/tag key/);
    expect(() => tags({ dept: 'v'.repeat(257) })).toThrow(/at most 256/);
    expect(() => tags({ dept: 'R&D' })).toThrow(/may only hold/);
    expect(() => tags({ dept: 'a – b' })).toThrow(/may only hold/);
    expect(() => tags({ 'aws:userid': 'x' })).toThrow(/reserved/);
    expect(() => tags({ Dept: 'a', dept: 'b' })).toThrow(/case-insensitive/);
    expect(() => tags({ dept: 'a' }, ['costCenter'])).toThrow(
      /TransitiveTagKeys: costCenter is not one of the session tags/,
    );
    try {
      tags({ 'dept!': 'v' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidAwsAttribute);
      expect((err as InvalidAwsAttribute).attribute).toBe('PrincipalTag:dept!');
    }
  });
});
