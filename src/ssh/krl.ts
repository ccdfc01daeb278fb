import { SshWriter } from './wire.js';

/** PROTOCOL.krl constants. */
const KRL_MAGIC = 0x5353484b524c0a00n; // "SSHKRL\n\0"
const KRL_FORMAT_VERSION = 1;
const KRL_SECTION_CERTIFICATES = 1;
const KRL_SECTION_CERT_SERIAL_LIST = 0x20;
const KRL_SECTION_CERT_SERIAL_RANGE = 0x21;

export interface KrlInput {
  /** increases with every change; sshd does not compare it, people and tools may */
  version: bigint;
  /** seconds since the epoch */
  generatedAt: number;
  comment?: string;
  /** per CA public key blob, the serials it issued that are revoked */
  revoked: Array<{ caPublicBlob: Buffer; serials: bigint[] }>;
}

/**
 * Writes a key revocation list in OpenSSH's binary format (the one `ssh-keygen -k` writes and
 * sshd's RevokedKeys reads). Serials go out ascending, runs of three or more as ranges; the KRL is
 * not signed (sshd does not check KRL signatures).
 */
export function encodeKrl(input: KrlInput): Buffer {
  const w = new SshWriter()
    .uint64(KRL_MAGIC)
    .uint32(KRL_FORMAT_VERSION)
    .uint64(input.version)
    .uint64(BigInt(Math.floor(input.generatedAt)))
    .uint64(0) // flags
    .string('') // reserved
    .string(input.comment ?? '');
  for (const { caPublicBlob, serials } of input.revoked) {
    if (serials.length === 0) continue;
    const section = new SshWriter().string(caPublicBlob).string(''); // reserved
    const { singles, ranges } = runsOf(serials);
    if (singles.length > 0) {
      const list = new SshWriter();
      for (const s of singles) list.uint64(s);
      section.uint8(KRL_SECTION_CERT_SERIAL_LIST).string(list.toBuffer());
    }
    for (const [lo, hi] of ranges) {
      section.uint8(KRL_SECTION_CERT_SERIAL_RANGE).string(new SshWriter().uint64(lo).uint64(hi).toBuffer());
    }
    w.uint8(KRL_SECTION_CERTIFICATES).string(section.toBuffer());
  }
  return w.toBuffer();
}

/** Sorted unique serials (0 is never a valid serial) split into singles and ranges of 3 or more. */
export function runsOf(serials: bigint[]): { singles: bigint[]; ranges: Array<[bigint, bigint]> } {
  const sorted = [...new Set(serials.filter((s) => s > 0n))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const singles: bigint[] = [];
  const ranges: Array<[bigint, bigint]> = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1n) j += 1;
    if (j - i >= 2) ranges.push([sorted[i]!, sorted[j]!]);
    else for (let k = i; k <= j; k += 1) singles.push(sorted[k]!);
    i = j + 1;
  }
  return { singles, ranges };
}
