import { describe, expect, it } from 'vitest';
import { testSigningKey } from '../../../test/support/saml-keys.js';
import type { AwsAccount, AwsRole } from '../../access/aws-accounts.js';
import { SAML_AUTHN_CLASS } from '../../authn/amr.js';
import { ManualClock } from '../../clock.js';
import type { SigningKeys } from '../../keys/signing-keys.js';
import { AwsRoleAssertions } from './aws-role-assertion.js';
import { NS, parseXml } from './xml.js';

const account = {
  id: '123456789012',
  signinEndpoint: 'https://signin.aws.amazon.com/saml',
  samlProviderArn: 'arn:aws:iam::123456789012:saml-provider/Ferry',
} as AwsAccount;
const role = { arn: 'arn:aws:iam::123456789012:role/Developer' } as AwsRole;

describe('the assertion Ferry exchanges at STS for `ferry creds`', () => {
  it('states the sign-in it was built from: password, MFA or phishing-resistant MFA', async () => {
    const key = await testSigningKey();
    const keys = { current: async () => key } as unknown as SigningKeys;
    const assertions = new AwsRoleAssertions(
      keys,
      new ManualClock('2026-12-06T10:00:00Z'),
      () => 'https://ferry.test/saml',
      300,
    );
    const classOf = async (amr: string[]) => {
      const built = await assertions.build({
        subjectId: 'u1',
        userName: 'test-awsdeveloper@contoso.example',
        awsIdentity: 'test-awsdeveloper',
        account,
        role,
        durationSeconds: 3600,
        sessionTags: {},
        authTime: null,
        amr,
      });
      const doc = parseXml(Buffer.from(built.base64, 'base64').toString('utf8'));
      return doc.getElementsByTagNameNS(NS.assertion, 'AuthnContextClassRef')[0]?.textContent;
    };
    expect(await classOf(['pwd'])).toBe(SAML_AUTHN_CLASS.passwordProtectedTransport);
    expect(await classOf(['pwd', 'otp', 'mfa'])).toBe(SAML_AUTHN_CLASS.mfa);
    expect(await classOf(['pwd', 'hwk', 'mfa'])).toBe(SAML_AUTHN_CLASS.phishingResistant);
  });
});
