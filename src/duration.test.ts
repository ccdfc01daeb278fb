import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('parseDuration', () => {
  it.each([
    ['90s', 90 * SECOND],
    ['15m', 15 * MINUTE],
    ['12h', 12 * HOUR],
    ['7d', 7 * DAY],
    ['1h30m', HOUR + 30 * MINUTE],
    ['1d12h', DAY + 12 * HOUR],
    ['2m30s', 2 * MINUTE + 30 * SECOND],
    ['500ms', 500],
    ['0s', 0],
    [' 15m ', 15 * MINUTE],
  ])('%s is %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['45', 45 * SECOND],
    ['0', 0],
    ['3600', HOUR],
  ])('a plain number "%s" is seconds', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('a YAML number is seconds too', () => {
    expect(parseDuration(45)).toBe(45 * SECOND);
    expect(parseDuration(0)).toBe(0);
  });

  it.each([
    '',
    '   ',
    'garbage',
    'm',
    '15x',
    '15 m',
    '1h 30m',
    '1.5h',
    '-5m',
    '15m30',
    'h15',
    '15mins',
    '30m and more',
  ])('"%s" is not a duration (null)', (text) => {
    expect(parseDuration(text)).toBeNull();
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('the number %s is not a duration (null)', (n) => {
    expect(parseDuration(n)).toBeNull();
  });
});
