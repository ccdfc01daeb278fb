import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';

// Alert sinks, PIM notification webhooks and audit head webhooks are URLs and SMTP hosts an admin or
// operator types in; Ferry then connects to them from inside the network it runs in. Without a check
// that is a (blind) SSRF: a webhook to http://169.254.169.254/… or an SMTP "server" on 10.0.0.5:6379
// (docs/activity.md "Where alerts may go", ADR 0048, ADR 0055). So a target's host is resolved and
// refused when any address it resolves to is internal, at creation and again at every send, and the
// connection goes to the address that was checked (no second lookup a rebinding DNS server could
// answer differently). This module is on the lowest floor so every floor that sends may use it.

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface TargetPolicy {
  /** alerts.allowPrivateTargets: internal addresses are fine (a lab, the demo, tests on loopback) */
  allowPrivate: boolean;
  /** alerts.allowTargetNetworks: CIDRs allowed although internal (e.g. the SMTP relay's subnet) */
  allowNetworks: string[];
  /** the resolver (default: the system's, as every other connection of Ferry) */
  resolve?: (host: string) => Promise<ResolvedAddress[]>;
}

/** The target is internal: sending there is refused (trying again cannot help). */
export class OutboundTargetRefused extends Error {
  constructor(
    readonly host: string,
    detail: string,
  ) {
    super(detail);
    this.name = 'OutboundTargetRefused';
  }
}

/**
 * The target's name does not resolve now. Not a refusal: at creation an alert sink is kept (DNS may be
 * down, or the name not published yet) and every send resolves and checks again.
 */
export class OutboundTargetUnresolvable extends Error {
  constructor(
    readonly host: string,
    detail: string,
  ) {
    super(detail);
    this.name = 'OutboundTargetUnresolvable';
  }
}

const INTERNAL: Array<[cidr: string, why: string]> = [
  ['0.0.0.0/8', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata lives at 169.254.169.254)'],
  ['10.0.0.0/8', 'private (RFC 1918)'],
  ['172.16.0.0/12', 'private (RFC 1918)'],
  ['192.168.0.0/16', 'private (RFC 1918)'],
  ['100.64.0.0/10', 'shared address space (RFC 6598)'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved or broadcast'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['198.18.0.0/15', 'benchmarking (RFC 2544)'],
  ['168.63.129.16/32', "Azure's platform endpoint (WireServer)"],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fe80::/10', 'link-local'],
  ['fc00::/7', 'private (unique local, fc00::/7)'],
  ['ff00::/8', 'multicast'],
  ['fec0::/10', 'site-local (deprecated)'],
  ['64:ff9b:1::/48', 'local-use NAT64 (RFC 8215)'],
  ['2002::/16', '6to4 (embeds an IPv4 address)'],
];

const ranges = INTERNAL.map(([cidr, why]) => {
  const [net, bits] = cidr.split('/') as [string, string];
  const list = new BlockList();
  list.addSubnet(net, Number(bits), isIP(net) === 6 ? 'ipv6' : 'ipv4');
  return { list, why, family: isIP(net) === 6 ? ('ipv6' as const) : ('ipv4' as const) };
});

/** The eight 16-bit groups of an IPv6 address (with a dotted IPv4 tail, as ::ffff:1.2.3.4). */
function groups6(address: string): number[] {
  let text = address.split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, -dotted[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => Number.parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address carries: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d)
 * or NAT64 (64:ff9b::a.b.c.d, which a NAT64 gateway forwards to that IPv4 address).
 */
function embeddedIpv4(address: string): string | null {
  const g = groups6(address);
  if (g.length !== 8) return null;
  const v4 = () => [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join('.');
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4();
  if (g.slice(0, 5).some((x) => x !== 0) || (g[5] !== 0xffff && g[5] !== 0)) return null;
  if (g[5] === 0 && g[6] === 0) return null; // ::, ::1 and friends are IPv6 themselves
  return v4();
}

/** Why `address` is internal (loopback, link-local, private, unspecified, multicast…), or null. */
export function internalReason(address: string): string | null {
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4) return internalReason(v4);
  }
  const type = family === 6 ? 'ipv6' : 'ipv4';
  for (const r of ranges) if (r.family === type && r.list.check(address, type)) return r.why;
  return null;
}

function allowList(networks: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of networks) {
    const [net, bits] = cidr.split('/') as [string, string | undefined];
    const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(net, bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits), family);
  }
  return list;
}

/** True when `cidr` is an address or a CIDR block (for the config schema). */
export function isCidr(cidr: string): boolean {
  const [net, bits, extra] = cidr.split('/');
  const family = isIP(net ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32);
}

const systemResolve = async (host: string): Promise<ResolvedAddress[]> =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

/**
 * Resolves `host` (a name or an IP literal, IPv6 with or without brackets) and returns its addresses
 * when every one of them may be reached under `policy`; otherwise throws OutboundTargetRefused naming
 * the address and why (OutboundTargetUnresolvable when the name does not resolve). Every address must pass: a name with one public and one internal address would
 * otherwise be a coin toss away from the internal one.
 */
export async function checkedAddresses(host: string, policy: TargetPolicy): Promise<ResolvedAddress[]> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  let addresses: ResolvedAddress[];
  if (isIP(bare)) addresses = [{ address: bare, family: isIP(bare) === 6 ? 6 : 4 }];
  else {
    try {
      addresses = await (policy.resolve ?? systemResolve)(bare);
    } catch (err) {
      throw new OutboundTargetUnresolvable(
        bare,
        `${bare} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    if (addresses.length === 0) throw new OutboundTargetUnresolvable(bare, `${bare} does not resolve`);
  }
  if (policy.allowPrivate) return addresses;
  const allowed = allowList(policy.allowNetworks);
  for (const a of addresses) {
    const why = internalReason(a.address);
    if (why === null) continue;
    const v4 = a.family === 6 ? embeddedIpv4(a.address) : null;
    if (allowed.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4') || (v4 && allowed.check(v4, 'ipv4')))
      continue;
    throw new OutboundTargetRefused(
      bare,
      `${bare === a.address ? a.address : `${bare} resolves to ${a.address}`}, an internal address (${why}): alert sinks and webhooks may not reach internal addresses unless alerts.allowPrivateTargets or alerts.allowTargetNetworks in the config allows them`,
    );
  }
  return addresses;
}

/**
 * A `lookup` for http(s).request and net.connect that answers with addresses already checked, so the
 * connection goes exactly where the check said it may (no second DNS answer in between).
 */
export function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  type Callback = (err: Error | null, address: string | ResolvedAddress[], family?: number) => void;
  return ((_hostname: string, options: { all?: boolean } | number, callback: Callback) => {
    const all = typeof options === 'object' && options?.all === true;
    if (all) callback(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  }) as unknown as LookupFunction;
}
