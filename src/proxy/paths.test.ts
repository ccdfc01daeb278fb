import { describe, expect, it } from 'vitest';
import { canonicalPath } from './paths.js';

describe('canonicalPath', () => {
  it.each([
    ['/', '/'],
    ['/a/b?x=1', '/a/b?x=1'],
    ['/a/./b', '/a/b'],
    ['/a/b/../c', '/a/c'],
    ['/a/%2e%2E/c', '/c'],
    ['/a/.%2e/c/', '/c/'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/a//b', '/a//b'],
    ['/a?next=/../x', '/a?next=/../x'],
  ])('resolves %s to %s', (raw, expected) => {
    expect(canonicalPath(raw)).toEqual({ ok: true, url: expected });
  });

  it.each([
    '/..',
    '/../etc/passwd',
    '/a/../../b',
    '/%2e%2e/b',
    '/a%2f..%2f..%2fb',
    '/a%2F..',
    '/a\\..\\..\\b',
    '/%5c..%5cb',
    '/a%00b',
    'a/b',
    'http://evil.example/',
  ])('refuses %s', (raw) => {
    expect(canonicalPath(raw).ok).toBe(false);
  });
});
