import type { Migration } from 'kysely';
import * as foundation from './0001_foundation.js';
import * as awsAccessSaml from './0002_aws_access_saml.js';
import * as ssh from './0004_ssh.js';

/** Every migration, in order. Add new ones at the end; never edit one that has shipped. */
export const migrations: Record<string, Migration> = {
  '0001_foundation': foundation,
  '0002_aws_access_saml': awsAccessSaml,
  '0004_ssh': ssh,
};
