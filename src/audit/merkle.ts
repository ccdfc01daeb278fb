import { createHash, hash } from 'node:crypto';

// An append-only Merkle tree as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it: leaf hash
// SHA-256(0x00 ‖ data), interior node SHA-256(0x01 ‖ left ‖ right), and the tree of n leaves split at
// the largest power of two below n. Hashes are 32-byte Buffers here and lowercase hex in storage.

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export function leafHash(data: Buffer | string): Buffer {
  // A string (an event's leaf data, for every audited write): one call, the 0x00 prefix as U+0000.
  if (typeof data === 'string') return hash('sha256', `\u0000${data}`, 'buffer');
  return createHash('sha256').update(LEAF).update(data).digest();
}

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256').update(NODE).update(left).update(right).digest();
}

/** MTH({}) (RFC 9162 §2.1.1): the hash of the empty string. */
export const EMPTY_ROOT = createHash('sha256').digest();

/** The largest power of two strictly smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A complete subtree the frontier holds: `size` leaves starting at `start`, `size` a power of two. */
export interface Subtree {
  start: number;
  size: number;
  hash: Buffer;
}

/**
 * The right edge of a tree (its "compact range"): one complete subtree per set bit of the size,
 * largest first. Appending a leaf merges equal-sized neighbours; each merge is a finished interior
 * node, reported to `onNode` so it can be stored for proofs. The root folds the subtrees from the right,
 * which is exactly MTH's split at the largest power of two.
 */
export class Frontier {
  #subtrees: Subtree[];
  #size: number;

  constructor(subtrees: Subtree[] = []) {
    this.#subtrees = subtrees.map((s) => ({ ...s }));
    this.#size = subtrees.reduce((n, s) => n + s.size, 0);
  }

  /** Rebuilds the frontier of a tree of `size` leaves from its subtree hashes (largest first). */
  static fromHashes(size: number, hashes: Buffer[]): Frontier {
    const subtrees: Subtree[] = [];
    let start = 0;
    for (let bit = 52; bit >= 0; bit--) {
      const s = 2 ** bit;
      if (Math.floor(size / s) % 2 === 1) {
        const hash = hashes[subtrees.length];
        if (!hash) throw new Error(`frontier of ${size} leaves needs more than ${hashes.length} hashes`);
        subtrees.push({ start, size: s, hash });
        start += s;
      }
    }
    if (subtrees.length !== hashes.length) throw new Error(`frontier of ${size} leaves has extra hashes`);
    return new Frontier(subtrees);
  }

  get size(): number {
    return this.#size;
  }

  hashes(): Buffer[] {
    return this.#subtrees.map((s) => s.hash);
  }

  append(leaf: Buffer, onNode?: (level: number, index: number, hash: Buffer) => void): void {
    this.#subtrees.push({ start: this.#size, size: 1, hash: leaf });
    this.#size += 1;
    for (;;) {
      const n = this.#subtrees.length;
      const right = this.#subtrees[n - 1];
      const left = this.#subtrees[n - 2];
      if (!left || !right || left.size !== right.size) break;
      const merged = { start: left.start, size: left.size * 2, hash: nodeHash(left.hash, right.hash) };
      this.#subtrees.splice(n - 2, 2, merged);
      onNode?.(Math.log2(merged.size), merged.start / merged.size, merged.hash);
    }
  }

  root(): Buffer {
    const s = this.#subtrees;
    if (s.length === 0) return EMPTY_ROOT;
    let r = s[s.length - 1]!.hash;
    for (let i = s.length - 2; i >= 0; i--) r = nodeHash(s[i]!.hash, r);
    return r;
  }
}

/** MTH of leaves [start, end); `subtree` answers complete, aligned subtrees (level, index). */
export type SubtreeHash = (level: number, index: number) => Promise<Buffer>;

async function rangeHash(start: number, end: number, subtree: SubtreeHash): Promise<Buffer> {
  const n = end - start;
  if (n > 0 && (n & (n - 1)) === 0 && start % n === 0) return subtree(Math.log2(n), start / n);
  const k = splitPoint(n);
  return nodeHash(await rangeHash(start, start + k, subtree), await rangeHash(start + k, end, subtree));
}

/** The audit path of leaf `m` in the tree of the first `n` leaves (RFC 9162 §2.1.3.1). */
export async function inclusionPath(m: number, n: number, subtree: SubtreeHash): Promise<Buffer[]> {
  if (m < 0 || m >= n) throw new RangeError(`leaf ${m} is not in a tree of ${n}`);
  const path: Buffer[] = [];
  let start = 0;
  let end = n;
  const tail: Buffer[] = [];
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m - start < k) {
      tail.push(await rangeHash(start + k, end, subtree));
      end = start + k;
    } else {
      tail.push(await rangeHash(start, start + k, subtree));
      start += k;
    }
  }
  // Recursion order appends the deepest sibling first.
  for (let i = tail.length - 1; i >= 0; i--) path.push(tail[i]!);
  return path;
}

/** The consistency proof from the tree of `m` leaves to the tree of `n` (RFC 9162 §2.1.4.1). */
export async function consistencyPath(m: number, n: number, subtree: SubtreeHash): Promise<Buffer[]> {
  if (m < 1 || m > n) throw new RangeError(`no consistency proof from ${m} to ${n} leaves`);
  const tail: Buffer[] = [];
  let start = 0;
  let end = n;
  let target = m;
  let whole = true;
  for (;;) {
    if (target === end - start) {
      if (!whole) tail.push(await rangeHash(start, end, subtree));
      break;
    }
    const k = splitPoint(end - start);
    if (target <= k) {
      tail.push(await rangeHash(start + k, end, subtree));
      end = start + k;
    } else {
      tail.push(await rangeHash(start, start + k, subtree));
      start += k;
      target -= k;
      whole = false;
    }
  }
  return tail.reverse();
}

const lsb = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

/** RFC 9162 §2.1.3.2: does `path` prove leaf `index` (hash `leaf`) is in the tree of `size` with `root`? */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Buffer,
  path: Buffer[],
  root: Buffer,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!lsb(fn)) {
        do {
          fn = half(fn);
          sn = half(sn);
        } while (!lsb(fn) && fn !== 0);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2: is the tree (size2, root2) an append-only extension of (size1, root1)? */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Buffer,
  root2: Buffer,
  proof: Buffer[],
): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < size1)
    return false;
  if (size1 === size2) return proof.length === 0 && root1.equals(root2);
  if (size1 === 0) return proof.length === 0 && root1.equals(EMPTY_ROOT);
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (lsb(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!lsb(fn)) {
        do {
          fn = half(fn);
          sn = half(sn);
        } while (!lsb(fn) && fn !== 0);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && fr.equals(root1) && sr.equals(root2);
}
