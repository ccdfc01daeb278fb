import { InvalidInput } from '../errors.js';

/**
 * One row of the IAM credential report (GenerateCredentialReport / GetCredentialReport). AWS writes
 * `N/A`, `no_information` and `not_supported` where a value is missing; they all become null here so
 * that "unknown" is never mistaken for a date. The root account is the row named `<root_account>`.
 */
export interface CredentialReportRow {
  user: string;
  arn: string;
  userCreationTime: string | null;
  passwordEnabled: boolean | null;
  passwordLastUsed: string | null;
  passwordLastChanged: string | null;
  mfaActive: boolean;
  accessKeys: Array<{
    slot: 1 | 2;
    active: boolean;
    lastRotated: string | null;
    lastUsed: string | null;
    lastUsedService: string | null;
  }>;
}

export const ROOT_ACCOUNT = '<root_account>';

const MISSING = new Set(['', 'N/A', 'no_information', 'not_supported']);
const value = (v: string | undefined): string | null => (v === undefined || MISSING.has(v) ? null : v);
const flag = (v: string | undefined): boolean | null => (v === 'true' ? true : v === 'false' ? false : null);

/** Accepts the CSV itself, or the JSON `aws iam get-credential-report` prints (base64 `Content`). */
export function parseCredentialReport(text: string): CredentialReportRow[] {
  let csv = text.trim();
  if (csv.startsWith('{')) {
    let content: unknown;
    try {
      content = (JSON.parse(csv) as { Content?: unknown }).Content;
    } catch {
      throw new InvalidInput(
        'credential report: neither CSV nor the JSON of get-credential-report',
        'credential-report',
      );
    }
    if (typeof content !== 'string')
      throw new InvalidInput('credential report: the JSON has no base64 Content', 'credential-report');
    csv = Buffer.from(content, 'base64').toString('utf8').trim();
  }
  const lines = csv.split(/\r?\n/).filter((l) => l !== '');
  const header = lines[0]?.split(',') ?? [];
  for (const required of ['user', 'arn', 'mfa_active'])
    if (!header.includes(required))
      throw new InvalidInput(`credential report: the header has no ${required} column`, 'credential-report');
  return lines.slice(1).map((line, i) => {
    const cells = line.split(',');
    if (cells.length !== header.length)
      throw new InvalidInput(
        `credential report line ${i + 2}: ${cells.length} fields, the header has ${header.length}`,
        'credential-report',
      );
    const row = Object.fromEntries(header.map((h, j) => [h, cells[j]])) as Record<string, string | undefined>;
    const key = (slot: 1 | 2) => ({
      slot,
      active: row[`access_key_${slot}_active`] === 'true',
      lastRotated: value(row[`access_key_${slot}_last_rotated`]),
      lastUsed: value(row[`access_key_${slot}_last_used_date`]),
      lastUsedService: value(row[`access_key_${slot}_last_used_service`]),
    });
    return {
      user: row.user ?? '',
      arn: row.arn ?? '',
      userCreationTime: value(row.user_creation_time),
      passwordEnabled: flag(row.password_enabled),
      passwordLastUsed: value(row.password_last_used),
      passwordLastChanged: value(row.password_last_changed),
      mfaActive: row.mfa_active === 'true',
      accessKeys: [key(1), key(2)],
    };
  });
}
