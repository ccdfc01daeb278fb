import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.js';

/** A signed tree head: the size and root of the ledger's Merkle tree at one moment, signed. */
export interface SignedTreeHead {
  /** always 'ferry-audit-tree-head/v1' */
  format: typeof HEAD_FORMAT;
  treeSize: number;
  /** hex SHA-256 */
  rootHash: string;
  /** ISO-8601, when the sequencer signed it */
  timestamp: string;
  /** which Ed25519 key signed it (see auditKeyId) */
  keyId: string;
  /** base64 Ed25519 signature over signedBytes() */
  signature: string;
}

export const HEAD_FORMAT = 'ferry-audit-tree-head/v1';

/** What the signature covers: every field but the signature, one per line, in a fixed order. */
export function headSignedBytes(h: Omit<SignedTreeHead, 'signature'>): Buffer {
  return Buffer.from(`${HEAD_FORMAT}\n${h.keyId}\n${h.treeSize}\n${h.rootHash}\n${h.timestamp}\n`, 'utf8');
}

export function signHead(
  head: Omit<SignedTreeHead, 'signature' | 'format'>,
  privateKey: KeyObject,
): SignedTreeHead {
  const unsigned = { format: HEAD_FORMAT, ...head } as const;
  return { ...unsigned, signature: sign(null, headSignedBytes(unsigned), privateKey).toString('base64') };
}

/** Null when the head is well-formed and signed by one of `keys`; otherwise what is wrong with it. */
export function checkHead(head: unknown, keys: Map<string, KeyObject> | KeyObject): string | null {
  const h = head as Partial<SignedTreeHead> | null;
  if (!h || typeof h !== 'object' || h.format !== HEAD_FORMAT) return 'not a Ferry audit tree head';
  if (!Number.isSafeInteger(h.treeSize) || (h.treeSize as number) < 0)
    return 'tree head has no valid treeSize';
  if (typeof h.rootHash !== 'string' || !/^[0-9a-f]{64}$/.test(h.rootHash))
    return 'tree head has no valid rootHash';
  if (typeof h.timestamp !== 'string' || typeof h.keyId !== 'string' || typeof h.signature !== 'string')
    return 'tree head is missing timestamp, keyId or signature';
  const key = keys instanceof Map ? keys.get(h.keyId) : keys;
  if (!key) return `tree head ${h.treeSize} is signed with an unknown key ${h.keyId}`;
  const ok = verify(null, headSignedBytes(h as SignedTreeHead), key, Buffer.from(h.signature, 'base64'));
  return ok ? null : `tree head ${h.treeSize} has a bad signature (another key, or altered)`;
}

/** The bytes a leaf hashes: the event's fields as canonical JSON (what `ferry audit prove` prints). */
export function leafData(event: LeafEvent): string {
  return canonicalJson(event);
}

/** Every field of an event the tree commits to. */
export interface LeafEvent {
  id: string;
  time: string;
  type: string;
  outcome: string;
  actor: unknown;
  subject: string | null;
  ip: string | null;
  requestId: string | null;
  data: Record<string, unknown>;
  /** events written before the ledger (0019) keep their old hash-chain link (which covers their seq) */
  chain?: { prevHash: string; hash: string };
}

/** `ferry audit prove`'s output: verifiable with the public key alone. */
export interface InclusionProof {
  format: 'ferry-audit-inclusion-proof/v1';
  event: LeafEvent;
  leafIndex: number;
  /** hex hashes, leaf to root */
  path: string[];
  head: SignedTreeHead;
  /** Ed25519 public key (SPKI PEM) that signed the head; informative: the verifier brings its own */
  publicKey?: string;
}

export interface ConsistencyProof {
  format: 'ferry-audit-consistency-proof/v1';
  from: SignedTreeHead;
  to: SignedTreeHead;
  path: string[];
}

/**
 * Checks an inclusion proof offline: the head is signed by `publicKey`, and the event (as printed)
 * hashes to a leaf that the path connects to the head's root. Null when it holds, else why not.
 */
export function checkInclusionProof(proof: unknown, publicKey: KeyObject | string): string | null {
  const p = proof as Partial<InclusionProof> | null;
  if (p?.format !== 'ferry-audit-inclusion-proof/v1' || !p.event || !Array.isArray(p.path) || !p.head)
    return 'not a Ferry audit inclusion proof';
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const bad = checkHead(p.head, key);
  if (bad) return bad;
  const path = hexList(p.path);
  if (!path) return 'the proof path is not a list of SHA-256 hashes';
  const leaf = leafHash(leafData(p.event));
  const ok = verifyInclusion(
    p.leafIndex as number,
    p.head.treeSize,
    leaf,
    path,
    Buffer.from(p.head.rootHash, 'hex'),
  );
  return ok
    ? null
    : `event ${p.event.id} is not at leaf ${p.leafIndex} of the tree this head signs (proof for another tree, or the event was altered)`;
}

/** Checks that `to` extends `from` without rewriting it; both heads must be signed by `publicKey`. */
export function checkConsistencyProof(
  proof: unknown,
  publicKey: KeyObject | Map<string, KeyObject>,
): string | null {
  const p = proof as Partial<ConsistencyProof> | null;
  if (p?.format !== 'ferry-audit-consistency-proof/v1' || !p.from || !p.to || !Array.isArray(p.path))
    return 'not a Ferry audit consistency proof';
  const bad = checkHead(p.from, publicKey) ?? checkHead(p.to, publicKey);
  if (bad) return bad;
  const path = hexList(p.path);
  if (!path) return 'the proof path is not a list of SHA-256 hashes';
  const ok = verifyConsistency(
    p.from.treeSize,
    p.to.treeSize,
    Buffer.from(p.from.rootHash, 'hex'),
    Buffer.from(p.to.rootHash, 'hex'),
    path,
  );
  return ok
    ? null
    : `the tree of ${p.to.treeSize} events does not extend the signed tree of ${p.from.treeSize} (history rewritten)`;
}

function hexList(list: unknown[]): Buffer[] | null {
  const out: Buffer[] = [];
  for (const x of list) {
    if (typeof x !== 'string' || !/^[0-9a-f]{64}$/.test(x)) return null;
    out.push(Buffer.from(x, 'hex'));
  }
  return out;
}

/** Checks whichever kind of proof `proof` is (inclusion or consistency) with one public key. */
export function checkProofFile(proof: unknown, publicKeyPem: string): string | null {
  let key: KeyObject;
  try {
    key = createPublicKey(publicKeyPem);
  } catch {
    return 'the public key is not a PEM public key';
  }
  const format = (proof as { format?: unknown } | null)?.format;
  if (format === 'ferry-audit-consistency-proof/v1') return checkConsistencyProof(proof, key);
  return checkInclusionProof(proof, key);
}
