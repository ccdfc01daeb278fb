import { createInterface } from 'node:readline';
import type { Inert } from './output.js';

/**
 * Answers for the questions a command asks: typed at a terminal (hidden for secrets), or, without a
 * terminal, read from standard input one line per question (as `tsh login --auth=local` does), so
 * scripts can pipe `printf 'password\n123456\n' | ferry login --user …`.
 */
export class Prompter {
  #piped: Promise<string[]> | null = null;
  #next = 0;

  constructor(
    private readonly input: NodeJS.ReadStream = process.stdin,
    private readonly output: NodeJS.WriteStream = process.stderr,
  ) {}

  get interactive(): boolean {
    return Boolean(this.input.isTTY);
  }

  /** The question is `Inert` (built with `t`), so a user name in it cannot draw on the terminal. */
  async ask(prompt: Inert, options: { secret?: boolean } = {}): Promise<string> {
    const question = prompt.text;
    if (!this.interactive) {
      this.#piped ??= readAll(this.input).then((text) => text.split(/\r?\n/));
      const lines = await this.#piped;
      const line = lines[this.#next++];
      if (line === undefined || (line === '' && this.#next >= lines.length)) {
        throw new Error(`no answer on standard input for "${question.trim()}" (one line per question)`);
      }
      return line;
    }
    return new Promise((resolve, reject) => {
      const rl = createInterface({ input: this.input, output: this.output, terminal: true });
      if (options.secret) {
        // Echo nothing of what is typed (the question itself is written once, below).
        (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
        this.output.write(question);
      }
      rl.question(options.secret ? '' : question, (answer) => {
        rl.close();
        if (options.secret) this.output.write('\n');
        resolve(answer);
      });
      rl.on('SIGINT', () => {
        rl.close();
        reject(new Error('cancelled'));
      });
    });
  }
}

async function readAll(stream: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
