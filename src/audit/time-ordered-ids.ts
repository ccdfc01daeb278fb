import { randomFillSync } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562): the clock's milliseconds, then a counter within the millisecond, then 62 random
 * bits. The rows' ids and audit events' ids index in the order they are written, so a batch lands on
 * the last page of each id index instead of a random page per row (a third less to write per commit).
 * Used by the SSH issuance and token endpoint group commits (decisions 0052, 0056).
 */
export class TimeOrderedIds {
  #ms = -1;
  #counter = 0;
  readonly #pool = Buffer.alloc(1024);
  #used = this.#pool.length;

  next(ms: number): string {
    if (ms > this.#ms) {
      this.#ms = ms;
      this.#counter = 0;
    } else if (++this.#counter > 0xfff) {
      // 4,096 ids in one millisecond: borrow the next one (ids stay unique and ordered)
      this.#ms += 1;
      this.#counter = 0;
    }
    if (this.#used + 8 > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#used = 0;
    }
    const random = this.#pool.subarray(this.#used, this.#used + 8);
    this.#used += 8;
    random[0] = (random[0]! & 0x3f) | 0x80; // variant 10
    const t = this.#ms.toString(16).padStart(12, '0');
    const r = random.toString('hex');
    const a = (0x7000 | this.#counter).toString(16);
    return `${t.slice(0, 8)}-${t.slice(8, 12)}-${a}-${r.slice(0, 4)}-${r.slice(4, 16)}`;
  }
}
