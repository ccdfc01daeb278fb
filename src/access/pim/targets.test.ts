import { describe, expect, it } from 'vitest';
import { isoDurationSeconds } from '../../aws/identity-center/permission-set-lookup.js';
import { InvalidInput } from '../../errors.js';
import {
  parsePimTarget,
  storedGroup,
  storedPermissionSet,
  storedSsh,
  targetParts,
  targetText,
} from './targets.js';

describe('PIM targets', () => {
  it.each([
    ['aws:123456789012/Administrator', { kind: 'aws-role', account: '123456789012', role: 'Administrator' }],
    ['aws:Account1/Administrator', { kind: 'aws-role', account: 'Account1', role: 'Administrator' }],
    [
      'aws:123456789012/permission-set/ReadOnly',
      { kind: 'permission-set', account: '123456789012', name: 'ReadOnly' },
    ],
    ['group:AWS-Account1-Administrators', { kind: 'group', group: 'AWS-Account1-Administrators' }],
    ['ssh:root@*.prod.internal', { kind: 'ssh', hosts: '*.prod.internal', login: 'root' }],
  ])('parses %s', (text, want) => {
    expect(parsePimTarget(text)).toEqual(want);
  });

  it.each([
    ['aws:123456789012/permission-set/has space', /Identity Center's rule/],
    ['aws:123456789012/permission-set/ThisNameIsLongerThanThirtyTwoChars', /Identity Center's rule/],
    ['ssh:-root@host', /not a Linux user name/],
    ['ssh:root@bad/host', /not a host name/],
    ['ssh:host-without-login', /is not one of/],
    ['printer:7', /is not one of/],
    ['', /is not one of/],
  ])('refuses %s with the rule it breaks', (text, message) => {
    expect(() => parsePimTarget(text)).toThrow(InvalidInput);
    expect(() => parsePimTarget(text)).toThrow(message);
  });

  it('stores each kind so that it reads back as written, and no permission set can collide with a role', () => {
    const ps = storedPermissionSet('123456789012', 'ReadOnly');
    expect(targetText(ps)).toBe('aws:123456789012/permission-set/ReadOnly');
    expect(targetParts(ps)).toEqual({ account: '123456789012', permissionSet: 'ReadOnly' });
    expect(ps.roleName).toContain('/'); // IAM role names never do
    const g = storedGroup('9d7f0c1e-0000-4000-8000-000000000001', 'Breakglass');
    expect(targetText(g)).toBe('group:Breakglass');
    expect(targetParts(g)).toEqual({ groupId: '9d7f0c1e-0000-4000-8000-000000000001' });
    const s = storedSsh('*.prod.internal', 'root');
    expect(targetText(s)).toBe('ssh:root@*.prod.internal');
    expect(targetParts(s)).toEqual({ hosts: '*.prod.internal', login: 'root' });
  });

  it.each([
    ['PT1H', 3600],
    ['PT8H', 28800],
    ['PT1H30M', 5400],
    ['PT12H', 43200],
  ])('reads the SessionDuration %s as %i seconds', (text, seconds) => {
    expect(isoDurationSeconds(text)).toBe(seconds);
  });

  it('refuses a duration it cannot read', () => {
    expect(() => isoDurationSeconds('P1D')).toThrow();
    expect(() => isoDurationSeconds('PT')).toThrow();
  });
});
