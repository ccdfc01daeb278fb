import { describe, expect, it } from 'vitest';
import { retryAfterMs } from './scim-client.js';

describe('Retry-After', () => {
  const now = Date.parse('2026-03-02T09:00:00Z');
  it('reads delta-seconds and HTTP-dates, and caps the wait at five minutes', () => {
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs('Mon, 02 Mar 2026 09:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Mon, 02 Mar 2026 08:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('86400', now)).toBe(300_000);
  });
  it('ignores a missing or unreadable header (backoff applies)', () => {
    expect(retryAfterMs(null, now)).toBeNull();
    expect(retryAfterMs('soon', now)).toBeNull();
  });
});
