import type { Clock } from '../clock.js';
import type { MasterKey } from '../keys/master-key.js';
import type { Store } from '../store/open.js';
import type { PasswordHasher } from './passwords.js';

/** What identity/ needs from the composition root. */
export interface IdentityDeps {
  store: Store;
  clock: Clock;
  masterKey: MasterKey;
  hasher: PasswordHasher;
}
