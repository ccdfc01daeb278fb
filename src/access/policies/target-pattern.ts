import { formatTarget, type Target } from '../targets.js';

/** The OUs holding an account, innermost first up to the root (access/organization.ts ancestorsOf). */
export type AccountOus = ReadonlyArray<{ id: string; path: string }>;

/** An OU pattern: aws:ou/<ou id, r- id or path>/<role | permission-set/name>, or null. */
export function ouPattern(pattern: string): { ou: string; rest: string } | null {
  const m = /^aws:ou\/(.+?)\/((?:permission-set\/)?[^/]+)$/.exec(pattern);
  return m ? { ou: m[1]!, rest: m[2]! } : null;
}

/**
 * Does a policy's target pattern cover this target? `all` covers everything; `*` is a wildcard
 * within the pattern (aws:*\/Admin*, ssh:*.prod.internal, app:*). SSH patterns name hosts only.
 * `aws:ou/<ou>/…` covers roles and permission sets in every account in that OU or below it: `ous` are
 * the target account's OUs as AWS Organizations was last discovered (none: the pattern covers nothing).
 */
export function targetMatches(pattern: string, target: Target, ous: AccountOus = []): boolean {
  if (pattern === 'all') return true;
  const ou = ouPattern(pattern);
  if (ou) {
    if (target.kind !== 'aws-role' && target.kind !== 'permission-set') return false;
    const rest = target.kind === 'aws-role' ? target.role : `permission-set/${target.name}`;
    if (!glob(ou.rest).test(rest)) return false;
    const ref = /^(ou-|r-)/.test(ou.ou) || ou.ou.startsWith('/') ? ou.ou : `/${ou.ou}`;
    const unit = glob(ref.replace(/\/+$/, ''));
    return ous.some((u) => unit.test(u.id) || unit.test(u.path));
  }
  const text = target.kind === 'ssh' ? `ssh:${target.host}` : formatTarget(target);
  const sshPattern =
    pattern.startsWith('ssh:') && pattern.includes('@')
      ? `ssh:${pattern.slice(pattern.indexOf('@') + 1)}`
      : pattern;
  if (sshPattern !== pattern && target.kind === 'ssh') {
    const login = pattern.slice(4, pattern.indexOf('@'));
    if (!glob(login).test(target.login)) return false;
  }
  return glob(sshPattern).test(text);
}

const cache = new Map<string, RegExp>();
function glob(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    re = new RegExp(
      `^${pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
        .join('.*')}$`,
      'i',
    );
    cache.set(pattern, re);
  }
  return re;
}
