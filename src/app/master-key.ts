import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { generateMasterKey, InvalidMasterKey, MasterKey, parseMasterKey } from '../keys/master-key.js';
import { type Config, ConfigInvalid } from './config.js';

/** The master key from FERRY_MASTER_KEY / keys.masterKey, or the file keys.masterKeyFile names. */
export function loadMasterKey(config: Config, source: string): MasterKey {
  const { masterKey, masterKeyFile } = config.keys;
  try {
    if (masterKey) return new MasterKey(parseMasterKey(masterKey));
    if (masterKeyFile) {
      if (!existsSync(masterKeyFile)) {
        throw new ConfigInvalid(
          source,
          'keys.masterKeyFile',
          `file ${masterKeyFile} does not exist (ferry init creates one)`,
        );
      }
      return new MasterKey(parseMasterKey(readFileSync(masterKeyFile, 'utf8')));
    }
  } catch (err) {
    if (err instanceof InvalidMasterKey) {
      throw new ConfigInvalid(source, masterKey ? 'keys.masterKey' : 'keys.masterKeyFile', err.message);
    }
    throw err;
  }
  throw new ConfigInvalid(
    source,
    'keys.masterKey',
    'required: set FERRY_MASTER_KEY or keys.masterKeyFile (ferry init creates one)',
  );
}

/** Creates a master key file readable by its owner only, unless one exists. */
export function ensureMasterKeyFile(path: string): boolean {
  if (existsSync(path)) return false;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${generateMasterKey()}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return true;
}
