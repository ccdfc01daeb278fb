import { InvalidInput } from '../errors.js';

/** What access is asked for. Written `aws:<account>/<role>` etc. in the CLI, API and audit trail. */
export type Target =
  | { kind: 'aws-role'; account: string; role: string }
  | { kind: 'permission-set'; account: string; name: string }
  | { kind: 'ssh'; host: string; login: string }
  | { kind: 'app'; name: string }
  /** one of Ferry's own admin roles (admin-roles.ts), decided like any other target */
  | { kind: 'admin'; role: string };

export function formatTarget(t: Target): string {
  switch (t.kind) {
    case 'aws-role':
      return `aws:${t.account}/${t.role}`;
    case 'permission-set':
      return `aws:${t.account}/permission-set/${t.name}`;
    case 'ssh':
      return `ssh:${t.login ? `${t.login}@` : ''}${t.host}`;
    case 'app':
      return `app:${t.name}`;
    case 'admin':
      return `admin:${t.role}`;
  }
}

export function parseTarget(text: string): Target {
  const aws = /^aws:(\d{12})\/(permission-set\/)?([\w+=,.@-]{1,128})$/.exec(text);
  if (aws) {
    return aws[2]
      ? { kind: 'permission-set', account: aws[1]!, name: aws[3]! }
      : { kind: 'aws-role', account: aws[1]!, role: aws[3]! };
  }
  const ssh = /^ssh:(?:([a-z_][\w.-]{0,31})@)?([\w.:*-]{1,253})$/i.exec(text);
  if (ssh) return { kind: 'ssh', host: ssh[2]!, login: ssh[1] ?? '' };
  const app = /^app:([\w.:/-]{1,256})$/.exec(text);
  if (app) return { kind: 'app', name: app[1]! };
  const admin = /^admin:([a-z][a-z-]{0,63})$/.exec(text);
  if (admin) return { kind: 'admin', role: admin[1]! };
  throw new InvalidInput(
    `target ${JSON.stringify(text)} is not one of aws:<account>/<role>, aws:<account>/permission-set/<name>, ssh:<host>, app:<name>, admin:<role>`,
    'target',
  );
}
