import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Headers a client could send to pass as another address, host or path to an app that believes its
 * proxy: only the proxy may say these, so a client's are dropped before the proxy adds its own.
 */
const CLIENT_CLAIMS = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'fly-client-ip',
  'x-original-forwarded-for',
  'x-original-url',
  'x-rewrite-url',
  'x-original-host',
  'x-host',
]);

/** The identity the proxy vouches for, as plain headers beside the signed one. */
export interface UpstreamIdentity {
  jwt: string;
  user: string;
  email: string | null;
  groups: string[];
}

export interface UpstreamHeaderOptions {
  identity: UpstreamIdentity;
  /** the client's Authorization was Ferry's token: it must not reach the app */
  stripAuthorization: boolean;
  /** cookies that are Ferry's or the proxy's own (session, sign-in): never forwarded; so is every `ferry_*` */
  ferryCookies: ReadonlySet<string>;
  /** upstream host[:port] for the Host header */
  upstreamHost: string;
  forwardedFor: string | null;
  forwardedProto: 'http' | 'https';
  forwardedHost: string;
  requestId: string;
  /** keep `Connection: upgrade` and `Upgrade` (a websocket handshake) */
  upgrade: boolean;
}

/** Header values are ASCII: percent-encode what isn't, and the separators of a list. */
export function headerValue(text: string): string {
  return text.replace(/[^\x21-\x7e ]|[%,]/g, (c) => encodeURIComponent(c));
}

/** Ferry's cookie namespace: its session, CSRF, OpenID and proxy cookies all start with it. */
const FERRY_COOKIE_PREFIX = 'ferry_';

/** Removes the named cookies (and Ferry's namespace) from a Cookie header value; undefined when none remain. */
export function withoutCookies(cookie: string | undefined, names: ReadonlySet<string>): string | undefined {
  if (!cookie) return undefined;
  const nameOf = (c: string) => (c.includes('=') ? c.slice(0, c.indexOf('=')) : c).trim();
  const kept = cookie
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c.length > 0 && !names.has(nameOf(c)) && !nameOf(c).startsWith(FERRY_COOKIE_PREFIX));
  return kept.length > 0 ? kept.join('; ') : undefined;
}

/**
 * What the app receives: the client's headers without hop-by-hop ones, without anything that claims
 * an identity (every X-Ferry-*, Ferry's token, Ferry's cookies, forwarding headers the client made up),
 * and with the identity Ferry vouches for.
 */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  o: UpstreamHeaderOptions,
): OutgoingHttpHeaders {
  const listed = new Set(
    String(incoming.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    if (name.startsWith('x-ferry-') || name.startsWith('x-forwarded-') || CLIENT_CLAIMS.has(name)) continue;
    if (name === 'host' || name === 'x-request-id') continue;
    if (name === 'authorization' && o.stripAuthorization) continue;
    if (name === 'cookie') {
      const kept = withoutCookies(Array.isArray(value) ? value.join('; ') : value, o.ferryCookies);
      if (kept) out.cookie = kept;
      continue;
    }
    out[name] = value;
  }
  if (o.upgrade) {
    out.connection = 'upgrade';
    if (incoming.upgrade) out.upgrade = incoming.upgrade;
  }
  out.host = o.upstreamHost;
  if (o.forwardedFor) out['x-forwarded-for'] = o.forwardedFor;
  out['x-forwarded-proto'] = o.forwardedProto;
  out['x-forwarded-host'] = o.forwardedHost;
  out['x-request-id'] = o.requestId;
  out['x-ferry-identity'] = o.identity.jwt;
  out['x-ferry-user'] = headerValue(o.identity.user);
  if (o.identity.email) out['x-ferry-email'] = headerValue(o.identity.email);
  out['x-ferry-groups'] = o.identity.groups.map(headerValue).join(',');
  return out;
}

/** The upstream's response headers for the client: hop-by-hop ones dropped. */
export function downstreamHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = new Set(
    String(incoming.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}
