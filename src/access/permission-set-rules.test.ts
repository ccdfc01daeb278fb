import { describe, expect, it } from 'vitest';
import { checkPermissionSet, isoDuration, isoDurationSeconds, parseScope } from './permission-set-rules.js';

describe('permission set rules', () => {
  it('normalises durations to ISO-8601 and sorts policies', () => {
    const spec = checkPermissionSet({
      name: 'Dev.Ops+1',
      sessionDuration: '90m',
      managedPolicies: ['arn:aws:iam::aws:policy/b', 'arn:aws:iam::aws:policy/a'],
      inlinePolicy: '{"Statement":{"Resource":"*","Effect":"Allow","Action":"s3:*"},"Version":"2012-10-17"}',
    });
    expect(spec.sessionDuration).toBe('PT1H30M');
    expect(spec.managedPolicies).toEqual(['arn:aws:iam::aws:policy/a', 'arn:aws:iam::aws:policy/b']);
    expect(spec.inlinePolicy).toBe(
      '{"Statement":{"Action":"s3:*","Effect":"Allow","Resource":"*"},"Version":"2012-10-17"}',
    );
    expect(checkPermissionSet({ name: 'X' }).sessionDuration).toBe('PT1H');
  });

  it.each([
    [{ name: '' }, 'name: must match'],
    [{ name: 'has space' }, 'name: must match'],
    [{ name: 'X', sessionDuration: 'PT59M' }, 'between PT1H and PT12H'],
    [{ name: 'X', sessionDuration: 'PT12H1S' }, 'between PT1H and PT12H'],
    [{ name: 'X', sessionDuration: 'soon' }, 'ISO-8601'],
    [{ name: 'X', description: 'tab\there' }, 'description'],
    [{ name: 'X', relayState: '<script>' }, 'relayState'],
    [{ name: 'X', inlinePolicy: '[]' }, 'must be a JSON object'],
    [{ name: 'X', inlinePolicy: { Version: '2012-10-17', Statement: [] } }, 'at least one statement'],
    [
      { name: 'X', inlinePolicy: { Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } },
      'Version',
    ],
    [
      { name: 'X', inlinePolicy: { Version: '2012-10-17', Foo: 1, Statement: [] } },
      'unknown top-level key Foo',
    ],
    [
      {
        name: 'X',
        inlinePolicy: { Version: '2012-10-17', Statement: { Effect: 'Maybe', Action: '*', Resource: '*' } },
      },
      'Allow or Deny',
    ],
    [{ name: 'X', customerManagedPolicies: [{ name: 'P', path: 'nope' }] }, 'start and end with /'],
    [
      { name: 'X', permissionsBoundary: { managedPolicyArn: 'arn:aws:iam::1:policy/x' } },
      'AWS managed policy ARN',
    ],
  ])('refuses %j naming the rule', (input, rule) => {
    expect(() => checkPermissionSet(input as Parameters<typeof checkPermissionSet>[0])).toThrow(rule);
  });

  it('reads ISO durations and scopes', () => {
    expect(isoDurationSeconds('PT1H30M')).toBe(5400);
    expect(isoDurationSeconds('P1D')).toBeNull();
    expect(isoDuration(43_200)).toBe('PT12H');
    expect(parseScope('ou-ab12-abcdefgh')).toEqual({ type: 'ou', ref: 'ou-ab12-abcdefgh' });
    expect(parseScope('/Root/Prod')).toEqual({ type: 'ou', ref: '/Root/Prod' });
    expect(parseScope('Account1')).toEqual({ type: 'account', ref: 'Account1' });
  });
});
