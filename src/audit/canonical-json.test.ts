import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

/** The definition: JSON.stringify of the value with object keys sorted at every depth. */
function reference(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = sort(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(sort(value));
}

class Thing {
  b = 1;
  a = 2;
}

const deep = (n: number): unknown => (n === 0 ? { z: 1, a: [2] } : { n, next: deep(n - 1) });
const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 'x' });
// biome-ignore lint/suspicious/noSparseArray: a hole is one of the cases
const sparse = [1, , 3];

describe('canonicalJson', () => {
  it.each([
    ['a string with escapes and unicode', 'zoë "q" \\ \n \u2028 \ud800'],
    ['numbers', [0, -0, 1.5, -1e21, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY]],
    ['booleans and null', [true, false, null]],
    [
      'nested objects, keys unsorted',
      {
        b: { d: 1, c: [{ y: 1, x: 2 }] },
        a: null,
        '': 'empty',
        '10': 1,
        '4294967295': 3,
        '01': 4,
        '9': 2,
        é: 1,
        Z: 2,
      },
    ],
    ['undefined members and holes', { a: undefined, b: [undefined, 1], c: sparse }],
    ['functions and symbols as values', { f: () => 1, s: Symbol('s'), arr: [() => 1, Symbol('t')] }],
    [
      'a Date, a Buffer, a Map, a class instance',
      { d: new Date(0), b: Buffer.from('hi'), m: new Map([[1, 2]]), t: new Thing() },
    ],
    ['an object with toJSON', { inner: { toJSON: () => 'replaced', a: 1 } }],
    ['an object without a prototype', { o: nullProto }],
    ['deep nesting past the direct path', deep(40)],
    // JSON.parse makes "__proto__" an own key; the definition drops it, at any depth, on either path
    ['an own __proto__ key', JSON.parse('{"__proto__":{"x":1},"a":1}')],
    [
      'an own __proto__ key beside deep nesting',
      { ...JSON.parse('{"__proto__":{"x":1},"a":1}'), d: deep(40) },
    ],
    [
      'an SSH certificate event',
      {
        serial: '7000',
        target: 'ssh:ec2-user@web-1.dev.internal',
        validBefore: '2026-12-06T16:02:43.000Z',
        keyId: 'test-awsdeveloper@contoso.example serial 7000',
        principals: ['ec2-user'],
        extensions: ['permit-pty'],
        criticalOptions: { 'source-address': '198.51.100.7' },
        reasons: ['member of AWS-Account1-Developers, which may log in as ec2-user on *'],
      },
    ],
    ['top-level undefined', undefined],
  ])('writes %s exactly as the definition does', (_name, value) => {
    expect(canonicalJson(value)).toBe(reference(value));
  });

  it('writes random JSON-like values exactly as the definition does', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const keys = ['a', 'B', 'é', '', '0', '7', '12', '01', 'toString', '__proto__x', 'z z'];
    const value = (depth: number): unknown => {
      switch (depth > 4 ? rand(5) : rand(8)) {
        case 0:
          return `s${rand(100)}\u00e9"`;
        case 1:
          return rand(1000) / 7 - 50;
        case 2:
          return rand(2) === 0;
        case 3:
          return null;
        case 4:
          return undefined;
        case 5:
          return Array.from({ length: rand(4) }, () => value(depth + 1));
        default: {
          const o: Record<string, unknown> = {};
          for (let i = rand(5); i > 0; i--) o[keys[rand(keys.length)]!] = value(depth + 1);
          return o;
        }
      }
    };
    for (let i = 0; i < 2000; i++) {
      const v = value(0);
      expect(canonicalJson(v)).toBe(reference(v));
    }
  });

  it('throws where the definition throws (a BigInt)', () => {
    expect(() => reference({ a: 1n })).toThrow();
    expect(() => canonicalJson({ a: 1n })).toThrow();
  });
});
