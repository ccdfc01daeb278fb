import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './process.js';

/** One message as the SMTP server received it: the envelope and the raw message (headers and body). */
export interface ReceivedMail {
  raw: string;
  subject: string | null;
}

export interface SmtpServer {
  host: string;
  port: number;
  /** messages received so far */
  messages: ReceivedMail[];
  /** resolves once `count` messages have arrived (or rejects after timeoutMs) */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

const BEGIN = '---------- MESSAGE FOLLOWS ----------';
const END = '------------ END MESSAGE ------------';

async function listening(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`SMTP server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A real SMTP server on loopback: Debian's python3-aiosmtpd with its Debugging handler, which prints
 * every message it accepts to stdout; we read them from there.
 */
export async function startSmtpServer(): Promise<SmtpServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    '/usr/bin/python3',
    ['-u', '-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const messages: ReceivedMail[] = [];
  const waiters: Array<() => void> = [];
  let buffer = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffer += chunk;
    for (;;) {
      const start = buffer.indexOf(BEGIN);
      const end = buffer.indexOf(END, start);
      if (start < 0 || end < 0) break;
      const raw = buffer.slice(start + BEGIN.length, end).trim();
      const headers = raw.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ');
      buffer = buffer.slice(end + END.length);
      messages.push({ raw, subject: /^Subject: (.*)$/m.exec(headers)?.[1] ?? null });
      for (const w of waiters.splice(0)) w();
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  try {
    await listening(port, Date.now() + 15_000);
  } catch (err) {
    child.kill();
    throw new Error(`${(err as Error).message}: ${stderr}`);
  }
  return {
    host: '127.0.0.1',
    port,
    messages,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} messages, got ${messages.length}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
      return messages;
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
