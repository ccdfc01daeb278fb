import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

/**
 * Country of an IP address from an offline database shipped as an npm package (no network, no
 * licence key): @ip-location-db/geo-whois-asn-country, CC0, ranges as `start,end,country` rows.
 * Loaded on first use (a few MB), then a binary search per lookup.
 */
interface Table {
  starts: bigint[];
  ends: bigint[];
  countries: string[];
}

let v4: Table | null = null;
let v6: Table | null = null;

function load(file: string, parse: (ip: string) => bigint): Table {
  const require = createRequire(import.meta.url);
  const path = require.resolve(`@ip-location-db/geo-whois-asn-country/${file}`);
  const starts: bigint[] = [];
  const ends: bigint[] = [];
  const countries: string[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [a, b, c] = line.split(',');
    if (!a || !b || !c) continue;
    starts.push(parse(a));
    ends.push(parse(b));
    countries.push(c.trim().toUpperCase());
  }
  return { starts, ends, countries };
}

function v4Number(ip: string): bigint {
  return ip.split('.').reduce((n, octet) => (n << 8n) + BigInt(Number(octet)), 0n);
}

function v6Number(ip: string): bigint {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) + BigInt(Number.parseInt(g || '0', 16)), 0n);
}

function search(t: Table, n: bigint): string | null {
  let lo = 0;
  let hi = t.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.starts[mid]! > n) hi = mid - 1;
    else if (t.ends[mid]! < n) lo = mid + 1;
    else return t.countries[mid]!;
  }
  return null;
}

/** ISO 3166 alpha-2 country of the address, or null (private, reserved or unknown addresses). */
export function countryOf(ip: string): string | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = mapped ? mapped[1]! : ip;
  const family = isIP(addr);
  if (family === 4) {
    v4 ??= load('geo-whois-asn-country-ipv4-num.csv', BigInt);
    return search(v4, v4Number(addr));
  }
  if (family === 6) {
    if (addr.includes('.')) return null; // embedded IPv4 forms other than ::ffff: are not looked up
    v6 ??= load('geo-whois-asn-country-ipv6.csv', v6Number);
    return search(v6, v6Number(addr));
  }
  return null;
}
