import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../audit/actor.js';
import { actorName } from '../audit/actor.js';
import { appendAudit } from '../audit/ledger.js';
import { type Clock, iso } from '../clock.js';
import { InvalidInput, NotFound } from '../errors.js';
import type { Store } from '../store/open.js';
import type { SshLoginsTable } from '../store/schema.js';
import type { PrincipalRef } from './assignments.js';

/**
 * Which Linux logins (certificate principals) a group may use on which hosts: e.g.
 * AWS-Account1-Developers → ec2-user on *.dev.internal. decide() reads these for `ssh:` targets.
 */
export interface SshLogin {
  id: string;
  groupId: string;
  groupName?: string;
  /** glob over host names: `*` any run of characters, `?` one; `*` alone means every host */
  hosts: string;
  logins: string[];
  portForwarding: boolean;
  agentForwarding: boolean;
  /** seconds; null = the configured default for SSH certificates */
  maxDuration: number | null;
  createdAt: string;
  updatedAt: string;
  createdBy: string;
}

export interface SshLoginInput {
  hosts: string;
  logins: string[];
  portForwarding?: boolean;
  agentForwarding?: boolean;
  maxDuration?: number | null;
}

/** Linux user names as useradd accepts them (and as principals sshd compares). */
export const LOGIN_PATTERN = /^[a-z_][a-z0-9_.-]{0,31}$/i;
/** Host names and addresses, with glob characters in patterns. */
export const HOST_PATTERN = /^[a-z0-9*?_.:[\]-]{1,253}$/i;

const fromRow = (r: SshLoginsTable, groupName?: string): SshLogin => ({
  id: r.id,
  groupId: r.group_id,
  ...(groupName !== undefined ? { groupName } : {}),
  hosts: r.host_pattern,
  logins: JSON.parse(r.logins) as string[],
  portForwarding: r.port_forwarding === 1,
  agentForwarding: r.agent_forwarding === 1,
  maxDuration: r.max_duration,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  createdBy: r.created_by,
});

/** Does `host` match the glob `pattern` (case-insensitive, as host names compare)? */
export function hostMatches(pattern: string, host: string): boolean {
  let re = hostPatterns.get(pattern);
  if (!re) {
    const source = pattern
      .toLowerCase()
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
      .join('');
    re = new RegExp(`^${source}$`);
    if (hostPatterns.size >= 1000) hostPatterns.clear();
    hostPatterns.set(pattern, re);
  }
  return re.test(host.toLowerCase());
}

/** Host patterns compiled (decide() matches every SSH request against its groups' patterns). */
const hostPatterns = new Map<string, RegExp>();

function validate(input: SshLoginInput): void {
  if (!HOST_PATTERN.test(input.hosts))
    throw new InvalidInput(
      `hosts ${JSON.stringify(input.hosts)} is not a host name or glob pattern`,
      'hosts',
    );
  if (input.logins.length === 0) throw new InvalidInput('give at least one login', 'logins');
  for (const l of input.logins) {
    if (!LOGIN_PATTERN.test(l))
      throw new InvalidInput(`login ${JSON.stringify(l)} is not a Linux user name`, 'logins');
  }
  const max = input.maxDuration;
  if (max !== undefined && max !== null && (!Number.isInteger(max) || max < 60 || max > 86400 * 7))
    throw new InvalidInput('maxDuration is seconds between 60 and 604800', 'maxDuration');
}

export class SshLogins {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async list(filter: { groupId?: string } = {}): Promise<SshLogin[]> {
    let q = this.store.db
      .selectFrom('ssh_logins')
      .innerJoin('groups', 'groups.id', 'ssh_logins.group_id')
      .selectAll('ssh_logins')
      .select('groups.display_name as group_name');
    if (filter.groupId) q = q.where('ssh_logins.group_id', '=', filter.groupId);
    const rows = await q.orderBy('groups.display_name_key').orderBy('ssh_logins.host_pattern').execute();
    return rows.map((r) => fromRow(r, r.group_name));
  }

  /** Mappings of any of these groups (decide() filters them by host and login). */
  async forGroups(groupIds: string[]): Promise<SshLogin[]> {
    if (groupIds.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('ssh_logins')
      .selectAll()
      .where('group_id', 'in', groupIds)
      .execute();
    return rows.map((r) => fromRow(r));
  }

  /** Creates the mapping for (group, hosts), or replaces its logins and options; idempotent. */
  async set(
    ctx: AuditContext,
    group: PrincipalRef,
    input: SshLoginInput,
  ): Promise<{ login: SshLogin; created: boolean; changed: boolean }> {
    validate(input);
    const logins = [...new Set(input.logins)];
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('ssh_logins')
        .selectAll()
        .where('group_id', '=', group.id)
        .where('host_pattern', '=', input.hosts)
        .executeTakeFirst();
      const now = iso(this.clock.now());
      const wanted = {
        logins: JSON.stringify(logins),
        port_forwarding: input.portForwarding ? 1 : 0,
        agent_forwarding: input.agentForwarding ? 1 : 0,
        max_duration: input.maxDuration ?? null,
      };
      let row: SshLoginsTable;
      if (existing) {
        const same = (Object.keys(wanted) as Array<keyof typeof wanted>).every(
          (k) => existing[k] === wanted[k],
        );
        if (same) return { login: fromRow(existing, group.name), created: false, changed: false };
        row = { ...existing, ...wanted, updated_at: now };
        await trx
          .updateTable('ssh_logins')
          .set({ ...wanted, updated_at: now })
          .where('id', '=', existing.id)
          .execute();
      } else {
        row = {
          id: randomUUID(),
          group_id: group.id,
          host_pattern: input.hosts,
          ...wanted,
          created_at: now,
          updated_at: now,
          created_by: actorName(ctx.actor),
        };
        await trx.insertInto('ssh_logins').values(row).execute();
      }
      await appendAudit(trx, this.store.engine, this.clock, {
        type: existing ? 'ssh-login.updated' : 'ssh-login.added',
        outcome: 'success',
        actor: ctx.actor,
        subject: `group:${group.name}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: {
          sshLoginId: row.id,
          hosts: row.host_pattern,
          logins,
          portForwarding: wanted.port_forwarding === 1,
          agentForwarding: wanted.agent_forwarding === 1,
          maxDuration: wanted.max_duration,
        },
      });
      return { login: fromRow(row, group.name), created: !existing, changed: true };
    });
  }

  async remove(ctx: AuditContext, id: string): Promise<SshLogin> {
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('ssh_logins').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new NotFound('ssh login mapping', id);
      await trx.deleteFrom('ssh_logins').where('id', '=', id).execute();
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'ssh-login.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: `group:${row.group_id}`,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { sshLoginId: id, hosts: row.host_pattern, logins: JSON.parse(row.logins) },
      });
      return fromRow(row);
    });
  }
}
