import { onFirstUse } from '../../lazy-module.js';

/** The package (its dictionaries are a few MB of heap) loads at the first check, not at start (ADR 0046). */
const zxcvbnCommon = onFirstUse<typeof import('@zxcvbn-ts/language-common')>('@zxcvbn-ts/language-common');

/**
 * The offline list of common and leaked passwords Ferry ships: zxcvbn-ts's (about 49,000 passwords
 * seen most often in breaches), compared case-insensitively. Loaded on first use.
 */
let common: Set<string> | null = null;

export function isCommonPassword(password: string): boolean {
  common ??= new Set((zxcvbnCommon.dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  return common.has(password.toLowerCase());
}
