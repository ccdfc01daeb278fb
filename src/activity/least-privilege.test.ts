import { describe, expect, it } from 'vitest';
import { simulate } from '../migrate/simulate.js';
import { resourceScope } from './least-privilege.js';

const OBJECT = 'arn:aws:s3:::reports/2026/q4/report-1.csv';
const BUCKET = 'arn:aws:s3:::reports';
const ROLE = 'arn:aws:iam::123456789012:role/Deployer';

describe('least privilege narrows resources where IAM allows it', () => {
  it('names the recorded ARNs of the action’s resource types', async () => {
    expect(await resourceScope('s3:GetObject', [BUCKET, OBJECT], false)).toEqual({
      resources: [OBJECT],
      note: null,
    });
    expect(await resourceScope('s3:ListBucket', [BUCKET, OBJECT], false)).toEqual({
      resources: [BUCKET],
      note: null,
    });
    expect(await resourceScope('iam:PassRole', [ROLE], false)).toEqual({ resources: [ROLE], note: null });
  });

  it('keeps "*" and says why: no resource-level permissions, nothing recorded, too many, unknown action', async () => {
    expect(await resourceScope('s3:ListAllMyBuckets', [BUCKET], false)).toMatchObject({
      resources: ['*'],
      note: 'the action does not support resource-level permissions',
    });
    expect(await resourceScope('ec2:DescribeInstances', [], false)).toMatchObject({ resources: ['*'] });
    expect((await resourceScope('s3:GetObject', [], false)).note).toMatch(/no resource ARN/);
    expect((await resourceScope('s3:GetObject', [OBJECT], true)).note).toMatch(/more than 50/);
    expect((await resourceScope('s3:NoSuchAction', [OBJECT], false)).note).toMatch(/not in IAM/);
  });

  it('a proposal on the recorded resources allows the recorded call and refuses another resource (iam-simulate)', async () => {
    const scope = await resourceScope('s3:GetObject', [OBJECT], false);
    const policies = [
      {
        name: 'FerryLeastPrivilege',
        policy: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: scope.resources }],
        },
      },
    ];
    const principalArn = 'arn:aws:iam::123456789012:role/Developer';
    expect(
      (await simulate(policies, { principalArn, action: 's3:GetObject', resource: OBJECT })).allowed,
    ).toBe(true);
    expect(
      (
        await simulate(policies, {
          principalArn,
          action: 's3:GetObject',
          resource: 'arn:aws:s3:::payroll/x.csv',
        })
      ).allowed,
    ).toBe(false);
  });
});
