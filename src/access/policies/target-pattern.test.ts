import { describe, expect, it } from 'vitest';
import { TARGET_PATTERN } from './policy.js';
import { ouPattern, targetMatches } from './target-pattern.js';

const ous = [
  { id: 'ou-ab12-team0001', path: '/Root/Workloads/Team' },
  { id: 'ou-ab12-work0001', path: '/Root/Workloads' },
  { id: 'r-ab12', path: '/Root' },
];
const role = { kind: 'aws-role' as const, account: '111122223333', role: 'Operator' };
const ps = { kind: 'permission-set' as const, account: '111122223333', name: 'AdministratorAccess' };

describe('policy targets that name an OU', () => {
  it('parse into the OU and the role or permission-set part', () => {
    expect(ouPattern('aws:ou/Root/Workloads/*')).toEqual({ ou: 'Root/Workloads', rest: '*' });
    expect(ouPattern('aws:ou/ou-ab12-work0001/permission-set/Admin*')).toEqual({
      ou: 'ou-ab12-work0001',
      rest: 'permission-set/Admin*',
    });
    expect(ouPattern('aws:*/Admin')).toBeNull();
    for (const ok of [
      'aws:ou/Root/Workloads/*',
      'aws:ou/r-ab12/permission-set/ReadOnly',
      'aws:ou//Root/X/Dev',
    ])
      expect(TARGET_PATTERN.test(ok), ok).toBe(true);
    for (const bad of ['aws:ou/', 'aws:ou/Root', 'aws:ou/Root Workloads/x y'])
      expect(TARGET_PATTERN.test(bad), bad).toBe(false);
  });

  it('cover roles and permission sets in accounts of the OU or below, by path or id, and nothing else', () => {
    expect(targetMatches('aws:ou/Root/Workloads/*', role, ous)).toBe(true);
    expect(targetMatches('aws:ou//Root/Workloads/Oper*', role, ous)).toBe(true);
    expect(targetMatches('aws:ou/root/workloads/team/*', role, ous)).toBe(true);
    expect(targetMatches('aws:ou/ou-ab12-work0001/permission-set/*', ps, ous)).toBe(true);
    expect(targetMatches('aws:ou/ou-ab12-work0001/permission-set/*', role, ous)).toBe(false);
    expect(targetMatches('aws:ou/Root/Workloads/Admin', role, ous)).toBe(false);
    expect(targetMatches('aws:ou/Root/Sandbox/*', role, ous)).toBe(false);
    // an account Organizations never named is in no OU
    expect(targetMatches('aws:ou/Root/*', role, [])).toBe(false);
    expect(targetMatches('aws:ou/Root/*', { kind: 'app', name: 'grafana' }, ous)).toBe(false);
  });
});
