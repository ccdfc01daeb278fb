import { describe, expect, it } from 'vitest';
import { countryOf } from './geoip.js';

describe('countryOf (offline table)', () => {
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
  ])('%s is %s', (ip, country) => {
    expect(countryOf(ip)).toBe(country);
  });
});
