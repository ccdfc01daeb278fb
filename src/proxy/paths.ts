/**
 * The one spelling of a proxied request's path, decided before anything else looks at it: dot
 * segments (also percent-encoded) are resolved, and what an upstream might read as a separator in
 * a way the proxy did not — an encoded slash or backslash, a raw backslash, an encoded NUL — is
 * refused. A path that would climb above the root is refused. So the upstream never receives a path
 * outside the app's base (RFC 3986 §5.2.4 remove_dot_segments; §2.2 on encoded delimiters).
 */
export type CanonicalPath = { ok: true; url: string } | { ok: false; reason: string };

const DOT = /^(?:\.|%2e)$/i;
const DOT_DOT = /^(?:\.|%2e){2}$/i;

export function canonicalPath(rawUrl: string): CanonicalPath {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = q === -1 ? '' : rawUrl.slice(q);
  if (!path.startsWith('/')) return { ok: false, reason: 'the path must start with /' };
  if (path.includes('\\')) return { ok: false, reason: 'a backslash in the path' };
  if (/%(?:2f|5c)/i.test(path)) return { ok: false, reason: 'an encoded slash or backslash in the path' };
  if (/%00/.test(path) || /\p{Cc}/u.test(path))
    return { ok: false, reason: 'a control character in the path' };
  const out: string[] = [];
  const segments = path.slice(1).split('/');
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    if (DOT.test(segment)) {
      if (last) out.push('');
      continue;
    }
    if (DOT_DOT.test(segment)) {
      if (out.length === 0) return { ok: false, reason: 'the path climbs above the root' };
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(segment);
  }
  return { ok: true, url: `/${out.join('/')}${query}` };
}
