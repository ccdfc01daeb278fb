import { describe, expect, it } from 'vitest';
import {
  consistencyPath,
  EMPTY_ROOT,
  Frontier,
  inclusionPath,
  leafHash,
  nodeHash,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

// The definition itself (RFC 9162 §2.1.1), written as recursively as the RFC writes it.
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

const leaves = Array.from({ length: 40 }, (_, i) => leafHash(`event ${i}`));
const subtree = async (level: number, index: number) =>
  mth(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level));

describe('Merkle tree (RFC 9162)', () => {
  it('hashes leaves and nodes with the 0x00 / 0x01 prefixes', () => {
    expect(leafHash('').toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
    for (const data of ['', 'event 1', 'zoë €  \u2028', '{"a":1}'.repeat(200)])
      expect(leafHash(data).equals(leafHash(Buffer.from(data, 'utf8'))), data).toBe(true);
    expect(leafHash(Buffer.alloc(0)).toString('hex')).toBe(leafHash('').toString('hex'));
    expect(EMPTY_ROOT.toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('the frontier gives the same root as the definition for every size, and names every finished node', async () => {
    const f = new Frontier();
    const nodes = new Map<string, Buffer>();
    for (let n = 1; n <= leaves.length; n++) {
      f.append(leaves[n - 1]!, (level, index, hash) => nodes.set(`${level}/${index}`, hash));
      expect(f.root().equals(mth(leaves.slice(0, n)))).toBe(true);
      const again = Frontier.fromHashes(n, f.hashes());
      expect(again.root().equals(f.root())).toBe(true);
    }
    for (const [key, hash] of nodes) {
      const [level, index] = key.split('/').map(Number) as [number, number];
      expect(hash.equals(await subtree(level, index))).toBe(true);
    }
  });

  it('inclusion proofs verify for every leaf of every size, and fail for another leaf, index or root', async () => {
    for (let n = 1; n <= 33; n++) {
      const root = mth(leaves.slice(0, n));
      for (let m = 0; m < n; m++) {
        const path = await inclusionPath(m, n, subtree);
        expect(verifyInclusion(m, n, leaves[m]!, path, root)).toBe(true);
        expect(verifyInclusion(m, n, leafHash('forged'), path, root)).toBe(false);
        if (n > 1) expect(verifyInclusion((m + 1) % n, n, leaves[m]!, path, root)).toBe(false);
        expect(verifyInclusion(m, n + 1, leaves[m]!, path, mth(leaves.slice(0, n + 1)))).toBe(false);
      }
    }
  });

  it('consistency proofs verify between every pair of sizes, and fail for a rewritten old tree', async () => {
    for (let n = 1; n <= 33; n++) {
      const root2 = mth(leaves.slice(0, n));
      for (let m = 1; m <= n; m++) {
        const root1 = mth(leaves.slice(0, m));
        const proof = await consistencyPath(m, n, subtree);
        expect(verifyConsistency(m, n, root1, root2, proof)).toBe(true);
        const rewritten = mth([leafHash('rewritten'), ...leaves.slice(1, m)]);
        expect(verifyConsistency(m, n, rewritten, root2, proof)).toBe(false);
      }
    }
    expect(verifyConsistency(0, 5, EMPTY_ROOT, mth(leaves.slice(0, 5)), [])).toBe(true);
    expect(verifyConsistency(5, 3, EMPTY_ROOT, EMPTY_ROOT, [])).toBe(false);
  });
});
