import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** A log file that is not a whole CloudTrail document: cut short, not JSON, or without `Records`. */
export class MalformedLogFile extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedLogFile';
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;
const RECORDS = 'Records';
/**
 * The most one record may take. CloudTrail caps an event at 256 KB; a "record" that keeps growing is
 * a broken or hostile file (a small gzip can unpack to gigabytes), not something to buffer.
 */
export const MAX_RECORD_BYTES = 1024 * 1024;
const GUNZIP_CHUNK_BYTES = 256 * 1024;

/**
 * An incremental reader of `{"Records":[{…},{…}]}`: it is fed byte chunks as they come out of gunzip
 * and hands back the text of each element of `Records` as soon as its closing brace arrives. It only
 * tracks strings, escapes and nesting (no tokens, no values), so the work per byte is a switch; each
 * record is then given to `JSON.parse`, which is much faster than any streaming tokenizer in JS.
 * A file of 10k+ records is never held whole: at most one record's bytes are carried between chunks.
 */
export class RecordsSplitter {
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** the key string at depth 1 being read (keys there are short), and the last complete one */
  #keyBytes: number[] | null = null;
  #lastString = '';
  #key = '';
  #inRecords = false;
  #sawRecords = false;
  /** the bytes of the record being read that arrived in earlier chunks */
  #carried: Buffer[] = [];
  #carriedBytes = 0;
  #recordOpen = false;
  /** an element of Records that is not an object (counted, not returned) */
  #inStray = false;
  nonObjects = 0;

  /** The records completed by this chunk, as JSON texts. */
  feed(chunk: Buffer): string[] {
    const done: string[] = [];
    let start = this.#recordOpen ? 0 : -1;
    // The hot state lives in locals for the loop (written back below): private fields cost a lookup per byte.
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    let recordOpen = this.#recordOpen;
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      if (inString) {
        if (this.#keyBytes === null) {
          // Most of a record is string contents: jump to the closing quote (native indexOf), a quote
          // closing when an even number of backslashes precede it.
          if (escaped) {
            escaped = false;
            continue;
          }
          let closed = -1;
          for (let from = i; ; ) {
            const q = chunk.indexOf(QUOTE, from);
            if (q === -1) break;
            let k = q - 1;
            while (k >= i && chunk[k] === BACKSLASH) k--;
            if ((q - 1 - k) % 2 === 0) {
              closed = q;
              break;
            }
            from = q + 1;
          }
          if (closed === -1) {
            // the string goes on in the next chunk; a trailing odd run of backslashes escapes its first byte
            let k = n - 1;
            while (k >= i && chunk[k] === BACKSLASH) k--;
            escaped = (n - 1 - k) % 2 === 1;
            i = n;
            break;
          }
          inString = false;
          i = closed;
          continue;
        }
        if (escaped) escaped = false;
        else if (chunk[i] === BACKSLASH) escaped = true;
        else if (chunk[i] === QUOTE) {
          inString = false;
          this.#lastString = Buffer.from(this.#keyBytes).toString('utf8');
          this.#keyBytes = null;
        } else if (this.#keyBytes.length < 64) this.#keyBytes.push(chunk[i]!);
        continue;
      }
      const b = chunk[i]!;
      switch (b) {
        case QUOTE:
          inString = true;
          if (depth === 1) this.#keyBytes = [];
          else if (this.#inRecords && depth === 2) this.#stray();
          break;
        case OPEN_OBJECT:
        case OPEN_ARRAY:
          depth++;
          if (depth === 2 && b === OPEN_ARRAY && this.#key === RECORDS) {
            this.#inRecords = true;
            this.#sawRecords = true;
          } else if (this.#inRecords && depth === 3) {
            if (b === OPEN_OBJECT) {
              recordOpen = true;
              start = i;
            } else this.#stray();
          }
          break;
        case CLOSE_OBJECT:
        case CLOSE_ARRAY:
          if (depth === 0) throw new MalformedLogFile('unbalanced closing bracket');
          if (recordOpen && depth === 3 && b === CLOSE_OBJECT) {
            const tail = chunk.subarray(start, i + 1);
            const bytes = this.#carried.length ? Buffer.concat([...this.#carried, tail]) : tail;
            done.push(bytes.toString('utf8'));
            this.#carried = [];
            this.#carriedBytes = 0;
            recordOpen = false;
            start = -1;
          }
          depth--;
          if (depth === 2 && this.#inRecords) this.#inStray = false;
          if (depth === 1) {
            this.#inRecords = false;
            this.#inStray = false;
          }
          break;
        case COLON:
          if (depth === 1) this.#key = this.#lastString;
          break;
        case COMMA:
          if (depth === 2) this.#inStray = false;
          break;
        default:
          // a number, true, false or null as an element of Records
          if (this.#inRecords && depth === 2 && b > 0x20) this.#stray();
      }
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
    this.#recordOpen = recordOpen;
    if (recordOpen) {
      const rest = Buffer.from(chunk.subarray(start === -1 ? 0 : start));
      this.#carriedBytes += rest.length;
      if (this.#carriedBytes > MAX_RECORD_BYTES)
        throw new MalformedLogFile(`a record is longer than ${MAX_RECORD_BYTES} bytes`);
      this.#carried.push(rest);
    }
    return done;
  }

  #stray(): void {
    if (!this.#inStray) this.nonObjects++;
    this.#inStray = true;
  }

  /** Call after the last chunk: throws when the document was cut short or has no Records. */
  end(): void {
    if (this.#depth !== 0 || this.#inString) throw new MalformedLogFile('the JSON document is cut short');
    if (!this.#sawRecords) throw new MalformedLogFile('not a CloudTrail log file (no "Records" array)');
  }
}

/**
 * Reads a CloudTrail log file and yields its records in batches, parsed. Gzip (as AWS delivers) is
 * recognised by its magic bytes rather than by the key or Content-Encoding, so a file some layer
 * already decompressed reads as well. A gzip or JSON fault throws MalformedLogFile after the batches
 * read whole before it; any other error (the connection) is thrown as it is.
 */
export async function* readLogFile(
  body: Readable,
  options: {
    batchSize: number;
    /** also yield each record's text as read (only needed to store whole records as they are) */
    keepTexts?: boolean;
  },
): AsyncGenerator<{ records: unknown[]; texts: string[]; nonObjects: number }> {
  const keepTexts = options.keepTexts ?? true;
  const splitter = new RecordsSplitter();
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await chunks.next();
  const gzip = !first.done && first.value[0] === 0x1f && first.value[1] === 0x8b;
  const raw = Readable.from(
    (async function* () {
      if (!first.done) yield first.value;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    })(),
    { objectMode: false },
  );
  let source: Readable = raw;
  if (gzip) {
    // Large output chunks: at zlib's default 16 KB, the per-chunk stream work cost more than inflating.
    const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
    raw.once('error', (err) => gunzip.destroy(err));
    source = raw.pipe(gunzip);
  }
  let batch: unknown[] = [];
  // each record's text as the file has it: stored as it is, instead of serialising the parsed record again
  // (left empty otherwise: a batch of texts kept alive until it is stored is garbage collection's work)
  let texts: string[] = [];
  let reportedNonObjects = 0;
  let failure: MalformedLogFile | null = null;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      for (const text of splitter.feed(chunk)) {
        try {
          batch.push(JSON.parse(text));
          if (keepTexts) texts.push(text);
        } catch {
          throw new MalformedLogFile('a record is not valid JSON');
        }
      }
      if (batch.length >= options.batchSize) {
        yield { records: batch, texts, nonObjects: splitter.nonObjects - reportedNonObjects };
        reportedNonObjects = splitter.nonObjects;
        batch = [];
        texts = [];
      }
    }
  } catch (err) {
    const code = String((err as NodeJS.ErrnoException).code ?? '');
    // zlib's errors are the file's fault; anything else (the connection to S3) is not, and is thrown
    // as it is so the file is read again next time instead of being skipped.
    if (err instanceof MalformedLogFile) failure = err;
    else if (code.startsWith('Z_'))
      failure = new MalformedLogFile(
        code === 'Z_BUF_ERROR'
          ? 'the gzip stream is cut short'
          : `unreadable gzip: ${(err as Error).message}`,
      );
    else throw err;
  }
  // What was read whole before a failure is kept: those records are as real as any.
  if (batch.length > 0 || splitter.nonObjects > reportedNonObjects)
    yield { records: batch, texts, nonObjects: splitter.nonObjects - reportedNonObjects };
  if (failure) throw failure;
  splitter.end();
}
