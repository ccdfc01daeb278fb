import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { countryOf } from './geoip.js';

const packageFile = (name: string) =>
  createRequire(import.meta.url).resolve(`@ip-location-db/geo-whois-asn-country/${name}`);

describe('countryOf (offline table)', () => {
  // First in the file: the table is loaded by the first lookup of this module instance.
  it('loads the IPv4 table without leaving the text of its 8 MB file in the heap', () => {
    // What outlives the young generation: old space and large objects, as committed (what RSS sees).
    const tenured = () =>
      v8
        .getHeapSpaceStatistics()
        .filter((s) => s.space_name === 'old_space' || s.space_name === 'large_object_space')
        .reduce((sum, s) => sum + s.space_size, 0);
    const before = tenured();
    expect(countryOf('8.8.8.8')).toBe('US');
    // Read as one string and split into lines, the file grew them by about 23 MB; now about 1.5 MB
    // (ADR 0060).
    expect(tenured() - before).toBeLessThan(8 * 1024 * 1024);
  });

  it.each([
    ['8.8.8.8', 'US'],
    ['1.0.0.1', 'AU'], // the first range
    ['1.0.0.255', 'AU'], // its last address
    ['1.0.1.0', 'CN'], // the next range's first
    ['223.255.255.1', 'AU'], // the last range
    ['255.255.255.255', null], // above every range
    ['0.0.0.1', null], // below every range
    ['127.0.0.1', null], // not in the table
    ['192.168.0.1', 'AU'], // as the whois data says, whatever one thinks of it
    ['::ffff:8.8.8.8', 'US'],
    ['not an address', null],
    ['2001:2::', 'JP'], // the first IPv6 range
    ['2001:2::ffff:ffff:ffff:ffff:ffff', 'JP'], // its last address
    ['2001:3::', null], // the gap after it
    ['2001:4860:4860::8888', 'US'],
    ['2c0f:e9a0:2:0:0:0:2b::', 'ZA'], // the last range, written with a zero run and a trailing ::
    ['2c0f:e9a0:1002:ffff:ffff:ffff:ffff:ffff', 'ZA'], // its last address
    ['::1', null],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null],
    ['::ffff:1.2.3.4.5', null],
  ])('%s is %s', (ip, country) => {
    expect(countryOf(ip)).toBe(country);
  });

  // The data nests some ranges inside others (845 IPv4 rows are in or around another): an address there
  // gets one of the countries. The rows checked are those overlapping no other.
  const v4Text = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => (n >> s) & 255n).join('.');
  const v6Text = (n: bigint) =>
    [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => ((n >> s) & 0xffffn).toString(16)).join(':');
  it.each([
    ['IPv4', 'geo-whois-asn-country-ipv4-num.csv', v4Text],
    ['IPv6', 'geo-whois-asn-country-ipv6-num.csv', v6Text],
  ])('puts the first and last address of every 97th %s range in its country', (_family, file, text) => {
    const rows = readFileSync(packageFile(file), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(','))
      .map(([start, end, country]) => ({ start: BigInt(start!), end: BigInt(end!), country }));
    let checked = 0;
    let endBefore = -1n; // the highest end of the rows before i
    for (let i = 0; i < rows.length - 1; i++) {
      const { start, end, country } = rows[i]!;
      const apart = endBefore < start && rows[i + 1]!.start > end;
      if (end > endBefore) endBefore = end;
      if (i % 97 !== 0 || !apart) continue;
      expect([countryOf(text(start)), countryOf(text(end))]).toEqual([country, country]);
      checked++;
    }
    expect(checked).toBeGreaterThan(rows.length / 100);
  });
});
