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

/**
 * IPv4 as typed arrays: 334,000 ranges as two BigInts and a string each took about 24 MB of heap;
 * 32-bit starts and ends and a country index take about 3 MB (ADR 0046).
 */
interface Table4 {
  starts: Uint32Array;
  ends: Uint32Array;
  country: Uint16Array;
  names: string[];
}

let v4: Table4 | null = null;
let v6: Table | null = null;

function load4(file: string): Table4 {
  const require = createRequire(import.meta.url);
  const lines = readFileSync(require.resolve(`@ip-location-db/geo-whois-asn-country/${file}`), 'utf8').split(
    '\n',
  );
  const starts = new Uint32Array(lines.length);
  const ends = new Uint32Array(lines.length);
  const country = new Uint16Array(lines.length);
  const names: string[] = [];
  const index = new Map<string, number>();
  let n = 0;
  for (const line of lines) {
    const [a, b, c] = line.split(',');
    if (!a || !b || !c) continue;
    const name = c.trim().toUpperCase();
    let i = index.get(name);
    if (i === undefined) {
      i = names.push(name) - 1;
      index.set(name, i);
    }
    starts[n] = Number(a);
    ends[n] = Number(b);
    country[n] = i;
    n++;
  }
  return { starts: starts.slice(0, n), ends: ends.slice(0, n), country: country.slice(0, n), names };
}

function search4(t: Table4, n: number): string | null {
  let lo = 0;
  let hi = t.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.starts[mid]! > n) hi = mid - 1;
    else if (t.ends[mid]! < n) lo = mid + 1;
    else return t.names[t.country[mid]!]!;
  }
  return null;
}

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

function v4Number(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
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
    v4 ??= load4('geo-whois-asn-country-ipv4-num.csv');
    return search4(v4, v4Number(addr));
  }
  if (family === 6) {
    if (addr.includes('.')) return null; // embedded IPv4 forms other than ::ffff: are not looked up
    v6 ??= load('geo-whois-asn-country-ipv6.csv', v6Number);
    return search(v6, v6Number(addr));
  }
  return null;
}
