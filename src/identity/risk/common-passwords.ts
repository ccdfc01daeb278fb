import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * The offline list of common and leaked passwords Ferry ships: zxcvbn-ts's (about 49,000 passwords
 * seen most often in breaches), compared case-insensitively. Loaded on first use.
 */
let common: Set<string> | null = null;

export function isCommonPassword(password: string): boolean {
  common ??= new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  return common.has(password.toLowerCase());
}
