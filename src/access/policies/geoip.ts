import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

/**
 * Country of an IP address from an offline database shipped as an npm package (no network, no
 * licence key): @ip-location-db/geo-whois-asn-country, CC0, ranges as `start,end,country` rows.
 * Loaded on first use, then a binary search per lookup.
 *
 * Both tables are typed arrays: IPv4 starts and ends as 32-bit numbers, IPv6 ones as four 32-bit words
 * each (most significant first), and a country index per range (ADR 0046, 0060). The files are read in
 * small chunks and parsed a line at a time: reading one as a single string and splitting it into lines
 * made tens of MB of garbage that outlived the young generation (the 8 MB IPv4 file left `ferry serve`
 * about 40 MB larger after the first sign-in).
 */
interface Table {
  /** addresses as `words` 32-bit words each, most significant first */
  starts: Uint32Array;
  ends: Uint32Array;
  country: Uint16Array;
  names: string[];
  words: 1 | 4;
}

let v4: Table | null = null;
let v6: Table | null = null;

const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/** Calls `line` with each line of the package's file (without its newline), reading 64 KiB at a time. */
function forEachLine(path: string, line: (text: string) => void): void {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let carry = '';
    for (;;) {
      const got = readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (got === 0) break;
      let from = 0;
      for (let nl = buf.indexOf(NEWLINE, 0); nl !== -1 && nl < got; nl = buf.indexOf(NEWLINE, from)) {
        line(carry + buf.toString('latin1', from, nl));
        carry = '';
        from = nl + 1;
      }
      carry += buf.toString('latin1', from, got);
    }
    if (carry) line(carry);
  } finally {
    closeSync(fd);
  }
}

/** Rows in the file (lines, the last with or without its newline): the arrays are allocated once, at their size. */
function countLines(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let n = 0;
    let last = NEWLINE;
    for (;;) {
      const got = readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (got === 0) break;
      for (let i = buf.indexOf(NEWLINE, 0); i !== -1 && i < got; i = buf.indexOf(NEWLINE, i + 1)) n++;
      last = buf[got - 1]!;
    }
    return last === NEWLINE ? n : n + 1;
  } finally {
    closeSync(fd);
  }
}

function load(file: string, words: 1 | 4, parse: (ip: string, into: Uint32Array, at: number) => void): Table {
  const path = createRequire(import.meta.url).resolve(`@ip-location-db/geo-whois-asn-country/${file}`);
  const capacity = countLines(path);
  const starts = new Uint32Array(capacity * words);
  const ends = new Uint32Array(capacity * words);
  const country = new Uint16Array(capacity);
  const names: string[] = [];
  const index = new Map<string, number>();
  let n = 0;
  forEachLine(path, (line) => {
    const [a, b, c] = line.split(',');
    if (!a || !b || !c) return;
    const name = c.trim().toUpperCase();
    let i = index.get(name);
    if (i === undefined) {
      i = names.push(name) - 1;
      index.set(name, i);
    }
    parse(a, starts, n * words);
    parse(b, ends, n * words);
    country[n] = i;
    n++;
  });
  return {
    starts: n === capacity ? starts : starts.slice(0, n * words),
    ends: n === capacity ? ends : ends.slice(0, n * words),
    country: n === capacity ? country : country.slice(0, n),
    names,
    words,
  };
}

/** Compares the address in `key` with the table's at row `row`: negative, zero or positive. */
function compare(table: Uint32Array, row: number, words: number, key: Uint32Array): number {
  for (let w = 0; w < words; w++) {
    const d = key[w]! - table[row * words + w]!;
    if (d !== 0) return d;
  }
  return 0;
}

function search(t: Table, key: Uint32Array): string | null {
  let lo = 0;
  let hi = t.country.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (compare(t.starts, mid, t.words, key) < 0) hi = mid - 1;
    else if (compare(t.ends, mid, t.words, key) > 0) lo = mid + 1;
    else return t.names[t.country[mid]!]!;
  }
  return null;
}

/** search() for one-word (IPv4) tables, comparing numbers directly: the lookup of every sign-in. */
function search4(t: Table, n: number): string | null {
  let lo = 0;
  let hi = t.country.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.starts[mid]! > n) hi = mid - 1;
    else if (t.ends[mid]! < n) lo = mid + 1;
    else return t.names[t.country[mid]!]!;
  }
  return null;
}

/** The IPv4 file's rows hold addresses as decimal numbers. */
function parseDecimal(n: string, into: Uint32Array, at: number): void {
  into[at] = Number(n);
}

function v4Number(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** An IPv6 address in text (`::` allowed, no embedded IPv4) as four 32-bit words. */
function parseV6(ip: string, into: Uint32Array, at: number): void {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  for (let w = 0; w < 4; w++) {
    const hi = Number.parseInt(groups[2 * w] || '0', 16);
    const lo = Number.parseInt(groups[2 * w + 1] || '0', 16);
    into[at + w] = hi * 0x10000 + lo;
  }
}

const key6 = new Uint32Array(4);

/** ISO 3166 alpha-2 country of the address, or null (private, reserved or unknown addresses). */
export function countryOf(ip: string): string | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = mapped ? mapped[1]! : ip;
  const family = isIP(addr);
  if (family === 4) {
    v4 ??= load('geo-whois-asn-country-ipv4-num.csv', 1, parseDecimal);
    return search4(v4, v4Number(addr));
  }
  if (family === 6) {
    if (addr.includes('.')) return null; // embedded IPv4 forms other than ::ffff: are not looked up
    v6 ??= load('geo-whois-asn-country-ipv6.csv', 4, parseV6);
    parseV6(addr, key6, 0);
    return search(v6, key6);
  }
  return null;
}
