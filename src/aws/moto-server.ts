import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** A running local AWS: point the AWS SDK (or CLI) at `endpoint`; `stop()` ends it. */
export interface LocalAws {
  endpoint: string;
  region: string;
  stop(): Promise<void>;
}

/** moto_server could not be started or never answered; `output` is the tail of what it printed. */
export class LocalAwsStartFailed extends Error {
  readonly output: string;
  constructor(reason: string, output: string, cause?: unknown) {
    super(output ? `${reason}\n--- moto_server output (tail) ---\n${output}` : reason, { cause });
    this.name = 'LocalAwsStartFailed';
    this.output = output;
  }
}

const MOTO_COMMAND = 'moto_server';
const LOCAL_AWS_REGION = 'us-east-1';
const START_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 100;
const KILL_GRACE_MS = 3_000;
const OUTPUT_TAIL_BYTES = 8 * 1024;
// Only an auto-picked port can lose a race to another process; a given port failing is the caller's problem.
const AUTO_PORT_ATTEMPTS = 3;

/** Whether `moto_server` is on PATH; scans PATH itself so no shell is involved. */
export function motoAvailable(): boolean {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  const names =
    process.platform === 'win32'
      ? (process.env['PATHEXT'] ?? '.EXE;.CMD;.BAT').split(';').map((ext) => MOTO_COMMAND + ext.toLowerCase())
      : [MOTO_COMMAND];
  return dirs.some((dir) => names.some((name) => isExecutableFile(join(dir, name))));
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts moto in server mode and resolves once it answers HTTP.
 *
 * `env` is added to the inherited environment (e.g. `INITIAL_NO_AUTH_ACTION_COUNT` to turn on IAM
 * enforcement). AWS managed policies are loaded by default so roles can attach them as in real AWS.
 */
export async function startMotoServer(opts?: {
  port?: number;
  host?: string;
  env?: NodeJS.ProcessEnv;
}): Promise<LocalAws> {
  const host = opts?.host ?? '127.0.0.1';
  const attempts = opts?.port === undefined ? AUTO_PORT_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt++) {
    const port = opts?.port ?? (await pickFreePort(host));
    try {
      return await startOnce(host, port, opts?.env);
    } catch (err) {
      const lostPortRace = err instanceof ExitedEarly && /address already in use/i.test(err.output);
      if (!lostPortRace || attempt >= attempts) throw err;
    }
  }
}

/** moto_server exited before it answered: distinguished so a lost port race can be retried. */
class ExitedEarly extends LocalAwsStartFailed {}

async function startOnce(host: string, port: number, extraEnv: NodeJS.ProcessEnv | undefined): Promise<LocalAws> {
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const output = new OutputTail(OUTPUT_TAIL_BYTES);
  const child = spawn(MOTO_COMMAND, ['-H', host, '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      MOTO_IAM_LOAD_MANAGED_POLICIES: 'true',
      PYTHONUNBUFFERED: '1', // so the output tail is current when startup fails
      ...extraEnv,
    },
  });
  // Always drain both pipes: moto logs every request, and a full pipe would block it.
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await once(child, 'spawn');
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? `${MOTO_COMMAND} is not on PATH`
        : `could not spawn ${MOTO_COMMAND}: ${(err as Error).message}`;
    throw new LocalAwsStartFailed(reason, output.text(), err);
  }
  // Later errors (e.g. a failed kill) must not crash the parent as unhandled 'error' events.
  child.on('error', (err) => output.push(Buffer.from(`[ferry] ${err.message}\n`)));

  // No orphans: if the parent exits without calling stop(), take moto with it (only sync work is possible here).
  const killOnParentExit = (): void => {
    if (isRunning(child)) child.kill('SIGKILL');
  };
  process.once('exit', killOnParentExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (isRunning(child)) {
        child.kill('SIGTERM');
        const escalate = setTimeout(() => {
          if (isRunning(child)) child.kill('SIGKILL');
        }, KILL_GRACE_MS);
        await exited;
        clearTimeout(escalate);
      }
      process.removeListener('exit', killOnParentExit);
    })();
    return stopping;
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(child)) {
      await stop();
      const how = child.exitCode !== null ? `code ${child.exitCode}` : `signal ${child.signalCode}`;
      throw new ExitedEarly(`${MOTO_COMMAND} exited with ${how} before answering on ${endpoint}`, output.text());
    }
    if (await answersHttp(endpoint)) return { endpoint, region: LOCAL_AWS_REGION, stop };
    if (Date.now() >= deadline) {
      await stop();
      throw new LocalAwsStartFailed(
        `${MOTO_COMMAND} did not answer on ${endpoint} within ${START_TIMEOUT_MS / 1000}s`,
        output.text(),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Any HTTP status means the server is up; only a connection failure means "not yet". */
async function answersHttp(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/** Asks the OS for a free port by binding to 0; moto gets it a moment later (a small, retried race). */
async function pickFreePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() =>
        port === undefined ? reject(new Error('could not read the picked port')) : resolve(port),
      );
    });
  });
}

/** Keeps the last `limit` bytes of a process's output for error messages. */
class OutputTail {
  #chunks: Buffer[] = [];
  #size = 0;
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size - (this.#chunks[0]?.length ?? 0) >= this.#limit) {
      this.#size -= this.#chunks.shift()?.length ?? 0;
    }
  }
  text(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - this.#limit)).toString('utf8');
  }
}
