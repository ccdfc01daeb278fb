import { BlockList, isIP, SocketAddress } from 'node:net';
import type { AuditContext } from '../../audit/actor.js';
import { appendAudit } from '../../audit/ledger.js';
import { type Clock, iso } from '../../clock.js';
import { InvalidInput, NotFound } from '../../errors.js';
import type { Store } from '../../store/open.js';
import { bumpPolicyGeneration } from './generation.js';

export interface NamedLocation {
  name: string;
  ranges: string[];
  createdAt: string;
  updatedAt: string;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a single address into a matcher; throws InvalidInput. */
export function cidrList(ranges: string[], field = 'ranges'): BlockList {
  const list = new BlockList();
  for (const r of ranges) {
    const [addr, bits, extra] = r.trim().split('/');
    const family = isIP(addr ?? '');
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (
      family === 0 ||
      extra !== undefined ||
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > (family === 6 ? 128 : 32)
    )
      throw new InvalidInput(`${JSON.stringify(r)} is not an IP address or CIDR range`, field);
    list.addSubnet(addr!, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/**
 * An address to check against lists (parsed once: BlockList.check parses a string anew each time).
 * IPv4-mapped IPv6 (::ffff:1.2.3.4, as Node reports some peers) counts as IPv4. Null when it is not an
 * address, which no list contains.
 */
export function addressOf(ip: string): SocketAddress | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = mapped ? mapped[1]! : ip;
  const family = isIP(addr);
  if (family === 0) return null;
  try {
    return new SocketAddress({ address: addr, family: family === 6 ? 'ipv6' : 'ipv4' });
  } catch {
    return null; // as BlockList.check answers for an address it cannot parse
  }
}

/** Named locations: sets of IP ranges policies refer to by name (the office, the VPN egress). */
export class NamedLocations {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async list(): Promise<NamedLocation[]> {
    const rows = await this.store.db.selectFrom('named_locations').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      ranges: JSON.parse(r.ranges) as string[],
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  async put(ctx: AuditContext, name: string, ranges: string[]): Promise<NamedLocation> {
    if (!/^[\w.-]{1,64}$/.test(name) || name === 'any')
      throw new InvalidInput(
        'a location name is 1-64 letters, digits, dots, dashes or underscores (and not "any")',
        'name',
      );
    if (name.includes('/') || /^\d+\.\d+\.\d+\.\d+$/.test(name))
      throw new InvalidInput('a location name must not look like an address', 'name');
    cidrList(ranges);
    const now = iso(this.clock.now());
    return this.store.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('named_locations')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      const json = JSON.stringify(ranges.map((r) => r.trim()));
      if (existing)
        await trx
          .updateTable('named_locations')
          .set({ ranges: json, updated_at: now })
          .where('name', '=', name)
          .execute();
      else
        await trx
          .insertInto('named_locations')
          .values({ name, ranges: json, created_at: now, updated_at: now })
          .execute();
      // Policies name locations: every instance must re-read the ranges at once.
      await bumpPolicyGeneration(trx);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: existing ? 'named-location.updated' : 'named-location.created',
        outcome: 'success',
        actor: ctx.actor,
        subject: name,
        ip: ctx.ip,
        requestId: ctx.requestId,
        data: { ranges },
      });
      return { name, ranges, createdAt: existing?.created_at ?? now, updatedAt: now };
    });
  }

  async remove(ctx: AuditContext, name: string): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('named_locations').where('name', '=', name).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw new NotFound('named location', name);
      await bumpPolicyGeneration(trx);
      await appendAudit(trx, this.store.engine, this.clock, {
        type: 'named-location.removed',
        outcome: 'success',
        actor: ctx.actor,
        subject: name,
        ip: ctx.ip,
        requestId: ctx.requestId,
      });
    });
  }

  /** Every location's matcher (decide() reads these with the policies). */
  async matchers(): Promise<Map<string, BlockList>> {
    const rows = await this.store.db.selectFrom('named_locations').select(['name', 'ranges']).execute();
    return new Map(rows.map((r) => [r.name, cidrList(JSON.parse(r.ranges) as string[])]));
  }
}
