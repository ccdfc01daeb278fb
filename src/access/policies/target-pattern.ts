import { formatTarget, type Target } from '../targets.js';

/**
 * Does a policy's target pattern cover this target? `all` covers everything; `*` is a wildcard
 * within the pattern (aws:*\/Admin*, ssh:*.prod.internal, app:*). SSH patterns name hosts only.
 */
export function targetMatches(pattern: string, target: Target): boolean {
  if (pattern === 'all') return true;
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
