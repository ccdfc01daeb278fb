import type { Command } from 'commander';
import { FerryClient } from './client.js';

/** The options every client command inherits from the program. */
export interface GlobalOptions {
  server: string;
  token?: string;
}

export const enc = encodeURIComponent;

/** The API client for the server and token the command was given (or $FERRY_TOKEN). */
export function clientOf(cmd: Command): FerryClient {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  return new FerryClient({ server: g.server, token: g.token ?? process.env.FERRY_TOKEN });
}

/** For repeatable options: `--attribute a=1 --attribute b=2`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
