import type { Command } from 'commander';
import { FerryClient } from './client.js';
import { resolveServer } from './config-dir.js';
import { callerToken, NotSignedIn } from './login-session.js';

/** The options every client command inherits from the program. */
export interface GlobalOptions {
  server?: string;
  token?: string;
}

export const enc = encodeURIComponent;

/** The API client for the server and admin token the command was given (or $FERRY_TOKEN). */
export function clientOf(cmd: Command): FerryClient {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  return new FerryClient({ server: resolveServer(g.server), token: g.token ?? process.env.FERRY_TOKEN });
}

/** The server a command talks to: --server, $FERRY_SERVER, the last `ferry login`, or the local default. */
export function serverOf(cmd: Command): string {
  return resolveServer(cmd.optsWithGlobals<GlobalOptions>().server);
}

/**
 * The API client acting as the signed-in person (their `ferry login`, refreshed when needed) or,
 * with FERRY_CLIENT_ID and FERRY_CLIENT_SECRET set, as that workload.
 */
export function callerClientOf(cmd: Command): FerryClient {
  const server = serverOf(cmd);
  const person = !(process.env.FERRY_CLIENT_ID && process.env.FERRY_CLIENT_SECRET);
  return new FerryClient({
    server,
    token: () => callerToken(server),
    ...(person
      ? {
          unauthorized: () =>
            new NotSignedIn(server, 'the server refused your sign-in (ended or revoked); sign in again'),
        }
      : {}),
  });
}

/** For repeatable options: `--attribute a=1 --attribute b=2`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The command line itself is wrong (options that exclude each other, a bad value): exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
