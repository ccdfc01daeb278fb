import { describe, expect, it } from 'vitest';
import { AuditSampler } from './audit-sampler.js';

describe('audit sampling of allowed proxy requests', () => {
  it('audits the first request of each session per app, then one in N', () => {
    const sampler = new AuditSampler(3);
    expect(sampler.shouldAudit('s1', 'dash')).toEqual({ audit: true, why: 'first-in-session' });
    expect(sampler.shouldAudit('s1', 'ops')).toEqual({ audit: true, why: 'first-in-session' });
    const next = Array.from({ length: 6 }, () => sampler.shouldAudit('s1', 'dash').audit);
    expect(next).toEqual([false, false, true, false, false, true]);
    expect(sampler.shouldAudit('s2', 'dash').why).toBe('first-in-session');
  });

  it('with rate 0 audits only first requests; with rate 1 every request', () => {
    const none = new AuditSampler(0);
    none.shouldAudit('s', 'a');
    expect(Array.from({ length: 5 }, () => none.shouldAudit('s', 'a').audit)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    const all = new AuditSampler(1);
    all.shouldAudit('s', 'a');
    expect(Array.from({ length: 3 }, () => all.shouldAudit('s', 'a').audit)).toEqual([true, true, true]);
  });

  it('forgets the oldest session when full, at the cost of one more event', () => {
    const sampler = new AuditSampler(0, 2);
    sampler.shouldAudit('a', 'x');
    sampler.shouldAudit('b', 'x');
    sampler.shouldAudit('c', 'x');
    expect(sampler.shouldAudit('c', 'x').audit).toBe(false);
    expect(sampler.shouldAudit('a', 'x').why).toBe('first-in-session');
  });
});
