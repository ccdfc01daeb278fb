import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, statSync } from 'node:fs';
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
// moto (Python) takes seconds to start, and over 30 s on a machine shared by many test runs.
const START_TIMEOUT_MS = 90_000;
const POLL_INTERVAL_MS = 100;
const KILL_GRACE_MS = 3_000;
const OUTPUT_TAIL_BYTES = 8 * 1024;
const NOT_FOUND_EXIT_CODE = 127; // the shell's convention for "command not found"
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

/**
 * Runs moto under a tiny Node supervisor whose stdin is a pipe from this process. Whatever way this process
 * ends (stop(), exit, SIGTERM from a test runner, SIGKILL), the pipe closes and the supervisor takes moto down:
 * a plain 'exit' handler would miss every signal death. SIGTERM to the supervisor ends moto the same way.
 */
const SUPERVISOR = `
const { spawn } = require('node:child_process');
const [command, ...args] = process.argv.slice(1);
const moto = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let escalation;
const end = () => {
  if (moto.exitCode !== null || moto.signalCode !== null) return;
  moto.kill('SIGTERM');
  escalation ??= setTimeout(() => moto.kill('SIGKILL'), ${KILL_GRACE_MS});
};
process.stdin.on('end', end).on('error', end).resume();
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, end);
moto.on('error', (err) => {
  console.error(err.code === 'ENOENT' ? command + ' is not on PATH' : err.message);
  process.exit(${NOT_FOUND_EXIT_CODE});
});
moto.on('exit', (code) => process.exit(code ?? 128));
`;

async function startOnce(
  host: string,
  port: number,
  extraEnv: NodeJS.ProcessEnv | undefined,
): Promise<LocalAws> {
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const output = new OutputTail(OUTPUT_TAIL_BYTES);
  const supervisor = spawn(
    process.execPath,
    ['-e', SUPERVISOR, MOTO_COMMAND, '-H', host, '-p', String(port)],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        MOTO_IAM_LOAD_MANAGED_POLICIES: 'true',
        PYTHONUNBUFFERED: '1', // so the output tail is current when startup fails
        ...extraEnv,
      },
    },
  );
  // Always drain both pipes: moto logs every request, and a full pipe would block it.
  supervisor.stdout.on('data', (chunk: Buffer) => output.push(chunk));
  supervisor.stderr.on('data', (chunk: Buffer) => output.push(chunk));
  supervisor.stdin.on('error', () => {}); // EPIPE once the supervisor is gone is expected

  const exited = new Promise<void>((resolve) => supervisor.once('exit', () => resolve()));
  try {
    await once(supervisor, 'spawn');
  } catch (err) {
    throw new LocalAwsStartFailed(`could not spawn the moto supervisor: ${(err as Error).message}`, '', err);
  }
  // Later errors (e.g. a failed kill) must not crash the parent as unhandled 'error' events.
  supervisor.on('error', (err) => output.push(Buffer.from(`[ferry] ${err.message}\n`)));

  // Belt and braces for a normal exit without stop(). SIGTERM, not SIGKILL: the supervisor must live to end moto.
  const endOnParentExit = (): void => {
    if (isRunning(supervisor)) supervisor.kill('SIGTERM');
  };
  process.once('exit', endOnParentExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (isRunning(supervisor)) {
        supervisor.kill('SIGTERM');
        // The supervisor escalates to SIGKILL on moto itself; this only guards against a stuck supervisor.
        const escalate = setTimeout(() => {
          if (isRunning(supervisor)) supervisor.kill('SIGKILL');
        }, KILL_GRACE_MS + 2_000);
        await exited;
        clearTimeout(escalate);
      }
      process.removeListener('exit', endOnParentExit);
    })();
    return stopping;
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(supervisor)) {
      await stop();
      if (supervisor.exitCode === NOT_FOUND_EXIT_CODE) {
        throw new LocalAwsStartFailed(`${MOTO_COMMAND} is not on PATH`, output.text());
      }
      const how =
        supervisor.exitCode !== null ? `code ${supervisor.exitCode}` : `signal ${supervisor.signalCode}`;
      throw new ExitedEarly(
        `${MOTO_COMMAND} exited with ${how} before answering on ${endpoint}`,
        output.text(),
      );
    }
    if (await answersAsMoto(endpoint)) return { endpoint, region: LOCAL_AWS_REGION, stop };
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

/**
 * Up once moto's own API answers. Asking for moto-api/data.json (not just any status) keeps a foreign server
 * that already holds a caller-given port from passing for moto in the moment before moto fails to bind.
 */
async function answersAsMoto(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(1_000) });
    if (res.status !== 200) {
      await res.body?.cancel();
      return false;
    }
    const body: unknown = await res.json();
    return typeof body === 'object' && body !== null;
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
