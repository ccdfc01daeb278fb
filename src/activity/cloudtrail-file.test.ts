import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { apiCall, assumedRole, logFile } from '../../test/support/cloudtrail.js';
import { MAX_RECORD_BYTES, MalformedLogFile, RecordsSplitter, readLogFile } from './cloudtrail-file.js';

const T = new Date('2026-12-01T10:00:00Z');
const record = (i: number) =>
  apiCall({
    identity: assumedRole({
      account: '123456789012',
      role: 'Developer',
      session: 'jane',
      accessKeyId: `ASIA${i}`,
    }),
    eventSource: 's3.amazonaws.com',
    eventName: 'GetObject',
    time: T,
    account: '123456789012',
    // strings that look like structure must not confuse the reader
    requestParameters: {
      key: `a "quoted" {brace} [bracket] \\ back\\slash é ✓ ${i}`,
      Records: [1, { x: '}' }],
      // backslash runs of both parities right before a quote, and a string that ends in one
      path: 'C:\\logs\\',
      quoted: '\\"\\\\"',
      [`k${i}\\`]: '\\',
    },
  });

async function readAll(bytes: Buffer, chunkSize = 64 * 1024, batchSize = 1000) {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  const records: unknown[] = [];
  let nonObjects = 0;
  let error: unknown = null;
  try {
    for await (const b of readLogFile(Readable.from(chunks), { batchSize })) {
      records.push(...b.records);
      nonObjects += b.nonObjects;
    }
  } catch (err) {
    error = err;
  }
  return { records, nonObjects, error };
}

describe('reading CloudTrail log files as a stream', () => {
  it('returns every record whole, whatever the chunk boundaries (strings with quotes, braces, escapes, UTF-8)', () => {
    const records = [record(1), record(2), record(3)];
    const text = Buffer.from(JSON.stringify({ Records: records }));
    for (let size = 1; size <= 97; size += 3) {
      const splitter = new RecordsSplitter();
      const texts: string[] = [];
      for (let i = 0; i < text.length; i += size) texts.push(...splitter.feed(text.subarray(i, i + size)));
      splitter.end();
      expect(texts.map((t) => JSON.parse(t))).toEqual(records);
    }
  });

  it('reads a gzip file of 12,000 records in batches without holding it whole', async () => {
    const records = Array.from({ length: 12_000 }, (_, i) => record(i));
    const batches: number[] = [];
    for await (const b of readLogFile(Readable.from([logFile(records)]), { batchSize: 5000 }))
      batches.push(b.records.length);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(12_000);
    expect(batches.length).toBeGreaterThan(1);
  });

  it('reads a file some layer already decompressed (plain JSON)', async () => {
    const res = await readAll(Buffer.from(JSON.stringify({ Records: [record(1)] })));
    expect(res.error).toBeNull();
    expect(res.records).toHaveLength(1);
  });

  it('keeps the records before the cut of a truncated gzip file, then reports it malformed', async () => {
    const records = Array.from({ length: 3000 }, (_, i) => record(i));
    const whole = logFile(records);
    const res = await readAll(whole.subarray(0, Math.floor(whole.length * 0.6)), 4096, 100);
    expect(res.error).toBeInstanceOf(MalformedLogFile);
    expect((res.error as Error).message).toBe('the gzip stream is cut short');
    expect(res.records.length).toBeGreaterThan(100);
    expect(res.records.length).toBeLessThan(3000);
  });

  it('reports a file that is not gzip of JSON, JSON cut short, or JSON without Records', async () => {
    const corrupt = Buffer.from(logFile([record(1)]));
    corrupt[20] = (corrupt[20] ?? 0) ^ 0xff;
    corrupt[21] = (corrupt[21] ?? 0) ^ 0xff;
    for (const [bytes, reason] of [
      [gzipSync('{"Records":[{"eventID":"1"},{"event'), 'the JSON document is cut short'],
      [gzipSync('{"DigestPublicKeyFingerprint":"x"}'), 'not a CloudTrail log file (no "Records" array)'],
      [gzipSync('{"Records":[{"eventID":1,}]}'), 'a record is not valid JSON'],
      [Buffer.alloc(0), 'not a CloudTrail log file (no "Records" array)'],
    ] as const) {
      const res = await readAll(bytes);
      expect(res.error, reason).toBeInstanceOf(MalformedLogFile);
      expect((res.error as Error).message).toBe(reason);
    }
    const res = await readAll(corrupt);
    expect(res.error).toBeInstanceOf(MalformedLogFile);
  });

  it('refuses a record that never ends (a gzip bomb) without buffering it, keeping the records before it', async () => {
    // 64 MB of one string inside one record compresses to about 64 kB
    const bomb = gzipSync(
      Buffer.concat([
        Buffer.from(`{"Records":[${JSON.stringify(record(1))},{"eventID":"2","x":"`),
        Buffer.alloc(64 * 1024 * 1024, 0x41),
        Buffer.from('"}]}'),
      ]),
    );
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const res = await readAll(bomb);
    expect(res.error).toBeInstanceOf(MalformedLogFile);
    expect((res.error as Error).message).toBe(`a record is longer than ${MAX_RECORD_BYTES} bytes`);
    expect(res.records).toHaveLength(1);
  });

  it('counts elements of Records that are not objects instead of returning them', async () => {
    const res = await readAll(
      gzipSync(JSON.stringify({ Records: [record(1), 42, 'text', null, [1, 2], record(2)] })),
    );
    expect(res.error).toBeNull();
    expect(res.records).toHaveLength(2);
    expect(res.nonObjects).toBe(4);
  });

  it('passes a connection failure through as it is (the file is read again next time, not skipped)', async () => {
    const body = new Readable({
      read() {
        this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      },
    });
    const res = await readAll(Buffer.alloc(0)).then(async () => {
      try {
        for await (const _ of readLogFile(body, { batchSize: 10 })) {
          // nothing
        }
        return null;
      } catch (err) {
        return err;
      }
    });
    expect(res).not.toBeInstanceOf(MalformedLogFile);
    expect((res as NodeJS.ErrnoException).code).toBe('ECONNRESET');
  });
});
