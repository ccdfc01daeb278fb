import { describe, expect, it } from 'vitest';
import { globMatch, RULE_DEFAULTS, suppressionOf } from '../activity/detections/settings.js';
import { configSchema } from './config.js';
import { detectionSettingsOf } from './services.js';

describe('detections and alerts in ferry.yaml', () => {
  it('keeps every rule default a file does not change, and converts durations and dates', () => {
    const config = configSchema.parse({
      detections: {
        rules: {
          'root-activity': { severity: 'high' },
          'access-denied-spike': { threshold: 5, window: '5m' },
          'admin-role-activated': { enabled: false },
        },
        suppress: [
          {
            rule: 'iam-credentials-created',
            account: '123456789012',
            from: '2026-12-06T00:00:00Z',
            until: '2026-12-06T06:00:00Z',
            reason: 'CHG-1042',
          },
        ],
      },
    });
    const s = detectionSettingsOf(config);
    expect(s.rules['root-activity']).toEqual({ ...RULE_DEFAULTS['root-activity'], severity: 'high' });
    expect(s.rules['access-denied-spike']).toMatchObject({
      threshold: 5,
      windowMs: 300_000,
      dedupWindowMs: 3_600_000,
    });
    expect(s.rules['admin-role-activated'].enabled).toBe(false);
    expect(s.rules['cloudtrail-disabled']).toEqual(RULE_DEFAULTS['cloudtrail-disabled']);
    expect(config.alerts).toEqual({
      maxPerSinkPerHour: 60,
      maxAttempts: 12,
      allowPrivateTargets: false,
      allowTargetNetworks: [],
      sinks: [],
    });
    const f = {
      rule: 'iam-credentials-created' as const,
      subject: '123456789012:ci',
      account: '123456789012',
    };
    expect(suppressionOf(s, f, new Date('2026-12-06T05:59:59Z'))?.reason).toBe('CHG-1042');
    expect(suppressionOf(s, f, new Date('2026-12-06T06:00:00Z'))).toBeNull();
    expect(suppressionOf(s, { ...f, account: '210987654321' }, new Date('2026-12-06T03:00:00Z'))).toBeNull();
    expect(suppressionOf(s, { ...f, rule: 'root-activity' }, new Date('2026-12-06T03:00:00Z'))).toBeNull();
  });

  it('refuses unknown rules, severities and bad durations, naming the key', () => {
    const issue = (raw: unknown) => {
      const r = configSchema.safeParse(raw);
      return r.success ? null : r.error.issues[0]!.path.join('.');
    };
    expect(issue({ detections: { rules: { 'root-activty': { severity: 'high' } } } })).toBe(
      'detections.rules',
    );
    expect(issue({ detections: { rules: { 'root-activity': { severity: 'urgent' } } } })).toBe(
      'detections.rules.root-activity.severity',
    );
    expect(issue({ detections: { rules: { 'root-activity': { dedupWindow: 'soon' } } } })).toBe(
      'detections.rules.root-activity.dedupWindow',
    );
    expect(
      issue({
        detections: { suppress: [{ from: 'yesterday', until: '2026-12-06T00:00:00Z', reason: 'x' }] },
      }),
    ).toBe('detections.suppress.0.from');
    expect(issue({ alerts: { maxPerSinkPerHour: 0 } })).toBe('alerts.maxPerSinkPerHour');
  });

  it('matches administrator role patterns case-insensitively, whole names only', () => {
    expect(globMatch('aws:*/Administrator*', 'aws:123456789012/Administrator')).toBe(true);
    expect(globMatch('aws:*/*Admin*', 'aws:123456789012/DatabaseAdmins')).toBe(true);
    expect(globMatch('admin:*', 'admin:auditor')).toBe(true);
    expect(globMatch('aws:*/Administrator*', 'aws:123456789012/Developer')).toBe(false);
    expect(globMatch('admin:*', 'aws:123456789012/admin')).toBe(false);
  });
});
