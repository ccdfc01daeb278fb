/**
 * The SSH wire encoding (RFC 4251 §5) that certificates and key revocation lists are written in:
 * big-endian integers and length-prefixed strings.
 */
export class SshWriter {
  readonly #parts: Buffer[] = [];

  uint8(n: number): this {
    this.#parts.push(Buffer.from([n & 0xff]));
    return this;
  }

  uint32(n: number): this {
    const b = Buffer.allocUnsafe(4); // every byte written next
    b.writeUInt32BE(n >>> 0);
    this.#parts.push(b);
    return this;
  }

  uint64(n: bigint | number): this {
    const b = Buffer.allocUnsafe(8); // every byte written next
    b.writeBigUInt64BE(BigInt(n));
    this.#parts.push(b);
    return this;
  }

  /** A length-prefixed byte string. */
  string(value: Buffer | string): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.uint32(bytes.length);
    this.#parts.push(bytes);
    return this;
  }

  /** An unsigned big integer given as its big-endian magnitude. */
  mpint(magnitude: Buffer): this {
    let i = 0;
    while (i < magnitude.length && magnitude[i] === 0) i += 1;
    let m = magnitude.subarray(i);
    // A set top bit would read as negative: prefix a zero byte.
    if (m.length > 0 && (m[0]! & 0x80) !== 0) m = Buffer.concat([Buffer.from([0]), m]);
    return this.string(m);
  }

  raw(bytes: Buffer): this {
    this.#parts.push(bytes);
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

/** Raised when bytes do not follow the wire encoding (truncated, overlong, trailing data). */
export class SshWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshWireError';
  }
}

export class SshReader {
  #offset = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.#offset;
  }

  #take(n: number): Buffer {
    if (n > this.remaining) throw new SshWireError('truncated');
    const out = this.buf.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  uint32(): number {
    return this.#take(4).readUInt32BE();
  }

  uint64(): bigint {
    return this.#take(8).readBigUInt64BE();
  }

  string(): Buffer {
    return this.#take(this.uint32());
  }

  text(): string {
    return this.string().toString('utf8');
  }

  end(): void {
    if (this.remaining !== 0) throw new SshWireError('unexpected trailing data');
  }
}
