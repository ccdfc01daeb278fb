import { RULES, type RuleId, type Severity } from './finding.js';

/** One rule as configured (`detections.rules.<rule>` in ferry.yaml), durations in milliseconds. */
export interface RuleSettings {
  enabled: boolean;
  severity: Severity;
  /** findings with the same key within this window are one alert (its occurrences grow) */
  dedupWindowMs: number;
  /** spike rules: how many events of one subject in `windowMs` raise the alert */
  threshold: number;
  windowMs: number;
}

/** A window in which matching findings are recorded but not sent (maintenance, a planned change). */
export interface SuppressionWindow {
  rule: RuleId | null;
  subject: string | null;
  account: string | null;
  from: Date;
  until: Date;
  reason: string;
}

export interface DetectionSettings {
  rules: Record<RuleId, RuleSettings>;
  suppress: SuppressionWindow[];
  /** PIM targets whose activation raises admin-role-activated: `aws:<account>/<role>` or `admin:<role>`, * matches any run */
  administratorRoles: string[];
  /** ARNs (a trailing * matches a prefix) of Ferry's own AWS identity, whose deny-policy writes are expected */
  ferryPrincipals: string[];
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const rule = (
  severity: Severity,
  dedupWindowMs: number,
  threshold = 1,
  windowMs = 15 * MINUTE,
): RuleSettings => ({
  enabled: true,
  severity,
  dedupWindowMs,
  threshold,
  windowMs,
});

export const RULE_DEFAULTS: Record<RuleId, RuleSettings> = {
  'root-activity': rule('critical', HOUR),
  'iam-credentials-created': rule('high', HOUR),
  'session-outside-ferry': rule('high', HOUR),
  'federation-tampering': rule('critical', 15 * MINUTE),
  'cloudtrail-disabled': rule('critical', 15 * MINUTE),
  'revoked-credentials-used': rule('critical', HOUR),
  'access-denied-spike': rule('medium', HOUR, 20, 10 * MINUTE),
  'signin-failure-spike': rule('medium', HOUR, 10, 15 * MINUTE),
  'provisioning-errors': rule('high', HOUR, 3, 15 * MINUTE),
  'admin-role-activated': rule('medium', 0),
  // SCIM requests without a valid bearer token, all together (not per connection or caller)
  'scim-auth-failures': rule('medium', HOUR, 20, 15 * MINUTE),
};

export interface SettingsInput {
  rules?: Partial<Record<RuleId, Partial<RuleSettings>>>;
  suppress?: SuppressionWindow[];
  administratorRoles?: string[];
  ferryPrincipals?: string[];
}

export function detectionSettings(input: SettingsInput = {}): DetectionSettings {
  const rules = {} as Record<RuleId, RuleSettings>;
  for (const id of RULES) rules[id] = { ...RULE_DEFAULTS[id], ...(input.rules?.[id] ?? {}) };
  return {
    rules,
    suppress: input.suppress ?? [],
    administratorRoles: input.administratorRoles ?? ['aws:*/Administrator*', 'aws:*/*Admin*', 'admin:*'],
    ferryPrincipals: input.ferryPrincipals ?? [],
  };
}

/** The suppression window that covers this finding at `at`, if any. */
export function suppressionOf(
  settings: DetectionSettings,
  f: { rule: RuleId; subject: string; account: string | null },
  at: Date,
): SuppressionWindow | null {
  const t = at.getTime();
  return (
    settings.suppress.find(
      (s) =>
        (s.rule === null || s.rule === f.rule) &&
        (s.subject === null || s.subject === f.subject) &&
        (s.account === null || s.account === f.account) &&
        s.from.getTime() <= t &&
        t < s.until.getTime(),
    ) ?? null
  );
}

/** Glob match where * is any run of characters (case-insensitive, as role names are in IAM). */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
    'i',
  );
  return re.test(value);
}
