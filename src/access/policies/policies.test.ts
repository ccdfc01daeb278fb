import { generateKeyPairSync } from 'node:crypto';
import { importPKCS8, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../../test/support/ferry.js';
import { applyTenant } from '../../app/tenant.js';
import type { AuditContext } from '../../audit/actor.js';
import { ManualClock } from '../../clock.js';
import { principalOf } from '../../identity/principal-of.js';
import type { Signals } from '../principal.js';
import { parseTarget } from '../targets.js';

const ctx: AuditContext = { actor: { type: 'operator', name: 'test' } };
const DEVICE_ISSUER = 'https://mdm.contoso.example';
const PWD = ['pwd'];
/** what this Ferry's posture assertions must be addressed to (conditionalAccess.devicePosture.audience) */
const FERRY_AUDIENCE = 'https://ferry.contoso.example';
const TOTP = ['pwd', 'otp', 'mfa'];
const WEBAUTHN = ['pwd', 'hwk', 'mfa'];

describe.each(ENGINES)('conditional access on %s', (engine) => {
  let ferry: TestFerry;
  let seq = 0;
  const clock = new ManualClock('2026-03-02T10:00:00.000Z'); // a Monday
  const deviceKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const unique = (p: string) => `${p}-${++seq}`;

  beforeAll(async () => {
    ferry = await startTestFerry(engine, {
      clock,
      config: {
        conditionalAccess: {
          devicePosture: {
            issuer: DEVICE_ISSUER,
            audience: FERRY_AUDIENCE,
            publicKeyPem: deviceKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
          },
        },
      },
    });
  });
  afterAll(async () => {
    await ferry?.close();
  });

  /** A user in a fresh group with Developer and Administrator on a fresh account; policies scoped to that group. */
  async function world() {
    const s = ferry.services;
    const accountId = String(300000000000 + ++seq);
    await s.accounts.upsert(ctx, { id: accountId, alias: unique('Acct') });
    await s.accounts.upsertRole(ctx, accountId, { name: 'Developer', maxSessionDuration: 7200 });
    await s.accounts.upsertRole(ctx, accountId, { name: 'Administrator', maxSessionDuration: 43200 });
    const group = await s.groups.create(ctx, { displayName: unique('Devs') });
    const user = await s.users.create(ctx, { userName: `${unique('dev')}@contoso.example` });
    lastUser = user.userName;
    await s.groups.setMembership(ctx, group.id, user.id, true);
    for (const role of ['Developer', 'Administrator'])
      await s.assignments.add(ctx, { type: 'group', id: group.id, name: group.displayName }, accountId, role);
    const principal = async (amr = TOTP, authTime: string | null = clock.now().toISOString()) =>
      principalOf(s.store.db, user.id, { amr, authTime });
    const decide = async (
      target: string,
      amr = TOTP,
      signals: Partial<Signals> = {},
      authTime?: string | null,
    ) =>
      s.access.decide(
        await principal(amr, authTime === undefined ? clock.now().toISOString() : authTime),
        parseTarget(target),
        {
          client: 'browser',
          ip: '198.51.100.7',
          ...signals,
        },
      );
    const policy = (name: string, body: Record<string, unknown>) =>
      s.policies.put(ctx, {
        name: `${name}-${group.displayName}`,
        state: 'on',
        include: { groups: [group.displayName] },
        targets: ['all'],
        ...body,
      });
    const dev = `aws:${accountId}/Developer`;
    const admin = `aws:${accountId}/Administrator`;
    return { s, accountId, group, user, decide, policy, dev, admin };
  }

  /** A posture assertion for `sub` (the person), addressed to Ferry, issued now, unless told otherwise. */
  const device = async (
    claims: Record<string, unknown>,
    opts: {
      key?: string;
      exp?: number;
      iss?: string;
      sub?: string;
      aud?: string | null;
      iat?: number | null;
    } = {},
  ) => {
    const pem = opts.key ?? deviceKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const now = Math.floor(clock.now().getTime() / 1000);
    const jwt = new SignJWT({ device_id: 'device-42', ...claims })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(opts.iss ?? DEVICE_ISSUER)
      .setSubject(opts.sub ?? lastUser)
      .setExpirationTime(opts.exp ?? now + 600);
    if (opts.aud !== null) jwt.setAudience(opts.aud ?? FERRY_AUDIENCE);
    if (opts.iat !== null) jwt.setIssuedAt(opts.iat ?? now);
    return jwt.sign(await importPKCS8(pem, 'ES256'));
  };
  /** the person the last world() made: device() binds to them unless told otherwise */
  let lastUser = '';

  it('without policies allows with the assignment and tags the MFA method', async () => {
    const { decide, dev } = await world();
    const d = await decide(dev, WEBAUTHN);
    expect(d).toMatchObject({ effect: 'allow', maxDuration: 7200, sessionTags: { MfaMethod: 'webauthn' } });
    expect(await decide(dev, TOTP)).toMatchObject({ sessionTags: { MfaMethod: 'totp' } });
    expect(await decide(dev, PWD)).toMatchObject({ sessionTags: { MfaMethod: 'none' } });
  });

  it('require MFA: a password-only sign-in must step up, a TOTP sign-in passes', async () => {
    const { decide, policy, dev } = await world();
    await policy('mfa', { grant: { require: ['mfa'] } });
    const d = await decide(dev, PWD);
    expect(d).toMatchObject({ effect: 'step-up', require: ['mfa'] });
    expect(d.reasons[0]!.message).toMatch(/requires mfa/);
    expect((await decide(dev, TOTP)).effect).toBe('allow');
  });

  it('require phishing-resistant MFA: TOTP is not enough, WebAuthn is', async () => {
    const { decide, policy, admin, dev } = await world();
    await policy('pr', { targets: ['aws:*/Admin*'], grant: { require: ['phishing-resistant-mfa'] } });
    expect(await decide(admin, TOTP)).toMatchObject({
      effect: 'step-up',
      require: ['phishing-resistant-mfa'],
    });
    expect(await decide(admin, WEBAUTHN)).toMatchObject({
      effect: 'allow',
      sessionTags: { MfaMethod: 'webauthn' },
    });
    // The wildcard target leaves Developer alone.
    expect((await decide(dev, TOTP)).effect).toBe('allow');
  });

  it('block wins over every grant, and exclusions beat inclusions', async () => {
    const { s, decide, policy, dev, user } = await world();
    await policy('grant', { grant: { require: ['mfa'] } });
    const { policy: blocking } = await policy('block', { grant: { block: true } });
    const d = await decide(dev, WEBAUTHN);
    expect(d.effect).toBe('deny');
    expect(d.reasons.map((r) => r.message).join()).toMatch(/blocked by policy block-/);
    const breakGlass = await s.groups.create(ctx, { displayName: unique('BreakGlass') });
    await s.groups.setMembership(ctx, breakGlass.id, user.id, true);
    const blockName = blocking.name;
    await s.policies.put(ctx, {
      ...(await apiView(blockName)),
      exclude: { groups: [breakGlass.displayName] },
    });
    const after = await s.access.explain(
      await principalOf(s.store.db, user.id, { amr: WEBAUTHN, authTime: clock.now().toISOString() }),
      parseTarget(dev),
      { client: 'browser', ip: '198.51.100.7' },
    );
    expect(after.effect).toBe('allow');
    const block = after.policies!.find((e) => e.policy === blockName)!;
    expect(block).toMatchObject({ applied: false });
    expect(block.why[0]).toMatch(/excluded as a member of BreakGlass/);
  });

  it('report-only never blocks but writes what it would have done to the sign-in log; off is ignored', async () => {
    const { s, decide, policy, dev, user } = await world();
    await policy('ro', { state: 'report-only', grant: { block: true } });
    await policy('off', { state: 'off', grant: { block: true } });
    const d = await decide(dev, TOTP);
    expect(d.effect).toBe('allow');
    expect(d.reasons.map((r) => r.message).join()).toMatch(/report-only: ro-.* would have blocked access/);
    expect(d.policies!.some((e) => e.policy.startsWith('off-'))).toBe(false);
    const events = await s.store.db
      .selectFrom('audit_events')
      .select(['data'])
      .where('type', '=', 'access.report-only')
      .where('subject', '=', user.userName)
      .execute();
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.data)).toMatchObject({ target: dev, policies: [{ wouldHave: 'block' }] });
  });

  it('named locations and CIDR ranges: include, exclude, unknown address', async () => {
    const { s, decide, policy, dev } = await world();
    const office = unique('office');
    await s.namedLocations.put(ctx, office, ['203.0.113.0/24', '2001:db8::/32']);
    await policy('outside-office', {
      conditions: { locations: { include: ['any'], exclude: [office] } },
      grant: { require: ['phishing-resistant-mfa'] },
    });
    expect((await decide(dev, TOTP, { ip: '203.0.113.9' })).effect).toBe('allow');
    expect((await decide(dev, TOTP, { ip: '::ffff:203.0.113.9' })).effect).toBe('allow');
    expect((await decide(dev, TOTP, { ip: '2001:db8::1' })).effect).toBe('allow');
    const away = await decide(dev, TOTP, { ip: '198.51.100.7' });
    expect(away.effect).toBe('step-up');
    await policy('block-range', {
      conditions: { locations: { include: ['192.0.2.0/25'] } },
      grant: { block: true },
    });
    expect((await decide(dev, WEBAUTHN, { ip: '192.0.2.100' })).effect).toBe('deny');
    expect((await decide(dev, WEBAUTHN, { ip: '192.0.2.200' })).effect).toBe('allow');
  });

  it('countries from the offline GeoIP database: include and exclude', async () => {
    const { s, user, decide, policy, dev } = await world();
    await policy('gb', { conditions: { countries: { include: ['gb'] } }, grant: { block: true } });
    const d = await decide(dev, TOTP, { ip: '81.2.69.160' });
    expect(d.effect).toBe('deny');
    expect(d.reasons[0]!.message).toMatch(/country GB matches/);
    const us = await s.access.explain(
      await principalOf(s.store.db, user.id, { amr: TOTP, authTime: clock.now().toISOString() }),
      parseTarget(dev),
      { client: 'browser', ip: '8.8.8.8' },
    );
    expect(us.effect).toBe('allow');
    expect(us.policies!.find((e) => e.policy.startsWith('gb-'))!.why[0]).toMatch(
      /country US is not one of GB/,
    );
    expect((await decide(dev, TOTP, { ip: '10.1.2.3' })).effect).toBe('allow');
    await policy('not-au', {
      conditions: { countries: { exclude: ['AU'] } },
      grant: { require: ['phishing-resistant-mfa'] },
    });
    expect((await decide(dev, TOTP, { ip: '1.0.0.7' })).effect).toBe('allow');
    expect((await decide(dev, TOTP, { ip: '8.8.8.8' })).effect).toBe('step-up');
  });

  it('client type: a CLI-only policy leaves the browser alone', async () => {
    const { decide, policy, dev } = await world();
    await policy('cli', { conditions: { clients: ['cli'] }, grant: { block: true } });
    expect((await decide(dev, TOTP, { client: 'browser' })).effect).toBe('allow');
    const d = await decide(dev, TOTP, { client: 'cli' });
    expect(d.effect).toBe('deny');
    expect(d.reasons[0]!.message).toMatch(/client cli is one of cli/);
  });

  it('sign-in risk and user risk levels', async () => {
    const { s, decide, policy, dev, user } = await world();
    await policy('risky-signin', { conditions: { signInRisk: ['medium', 'high'] }, grant: { block: true } });
    await policy('risky-user', {
      conditions: { userRisk: ['high'] },
      grant: { require: ['phishing-resistant-mfa'] },
    });
    const p = await principalOf(s.store.db, user.id, {
      amr: TOTP,
      authTime: clock.now().toISOString(),
      signInRisk: 'high',
    });
    expect((await s.access.decide(p, parseTarget(dev), { client: 'browser' })).effect).toBe('deny');
    p.signInRisk = 'low';
    expect((await s.access.decide(p, parseTarget(dev), { client: 'browser' })).effect).toBe('allow');
    await s.store.db
      .insertInto('risk_detections')
      .values({
        id: unique('det'),
        user_id: user.id,
        subject: user.userName,
        kind: 'leaked-password',
        level: 'high',
        ip: null,
        detail: '{}',
        state: 'open',
        created_at: clock.now().toISOString(),
        resolved_at: null,
        resolved_by: null,
      })
      .execute();
    expect(await decide(dev, TOTP)).toMatchObject({ effect: 'step-up', require: ['phishing-resistant-mfa'] });
    await s.store.db
      .updateTable('risk_detections')
      .set({ state: 'dismissed' })
      .where('user_id', '=', user.id)
      .execute();
    expect((await decide(dev, TOTP)).effect).toBe('allow');
  });

  it('compliant device: a signed posture assertion for this user counts, nothing else does', async () => {
    const { decide, policy, dev, user } = await world();
    await policy('device', { grant: { require: ['compliant-device'] } });
    expect(await decide(dev, TOTP)).toMatchObject({ effect: 'step-up', require: ['compliant-device'] });
    expect(
      (await decide(dev, TOTP, { deviceAssertion: await device({ compliant: true, upn: user.userName }) }))
        .effect,
    ).toBe('allow');
    expect((await decide(dev, TOTP, { deviceAssertion: await device({ compliant: false }) })).effect).toBe(
      'step-up',
    );
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const forged = await decide(dev, TOTP, {
      deviceAssertion: await device({ compliant: true }, { key: other }),
    });
    expect(forged.effect).toBe('step-up');
    expect(forged.reasons[0]!.message).toMatch(/device assertion is not valid/);
    const expired = await device(
      { compliant: true },
      { exp: Math.floor(clock.now().getTime() / 1000) - 120 },
    );
    expect((await decide(dev, TOTP, { deviceAssertion: expired })).effect).toBe('step-up');
    expect(
      (
        await decide(dev, TOTP, {
          deviceAssertion: await device({ compliant: true }, { iss: 'https://evil.example' }),
        })
      ).effect,
    ).toBe('step-up');
    expect(
      (
        await decide(dev, TOTP, {
          deviceAssertion: await device({ compliant: true, upn: 'someone-else@contoso.example' }),
        })
      ).effect,
    ).toBe('step-up');
  });

  it('device posture is bound: Ferry as audience, this person as subject, the issuer, a short maximum age', async () => {
    const { decide, policy, dev, user } = await world();
    await policy('bound', { grant: { require: ['compliant-device'] } });
    const now = Math.floor(clock.now().getTime() / 1000);
    const judged = async (assertion: string) => {
      const d = await decide(dev, TOTP, { deviceAssertion: assertion });
      return { effect: d.effect, why: d.reasons.map((r) => r.message).join(' | ') };
    };
    // The person named by UPN (any case) or by user id counts.
    expect((await judged(await device({ compliant: true }))).effect).toBe('allow');
    expect(
      (await judged(await device({ compliant: true }, { sub: user.userName.toUpperCase() }))).effect,
    ).toBe('allow');
    expect((await judged(await device({ compliant: true }, { sub: user.id }))).effect).toBe('allow');
    // Each of these would have counted on main; now each is ignored, saying why.
    for (const [what, assertion, why] of [
      ['another audience', await device({ compliant: true }, { aud: 'https://other-app.example' }), /"aud"/],
      ['no audience', await device({ compliant: true }, { aud: null }), /"aud"/],
      [
        'another person',
        await device({ compliant: true }, { sub: 'someone-else@contoso.example' }),
        /is about "someone-else@contoso\.example", not/,
      ],
      ['a bare device id', await device({ compliant: true }, { sub: 'device-42' }), /is about "device-42"/],
      ['ten minutes old', await device({ compliant: true }, { iat: now - 600 }), /"iat"|too old|age/i],
      ['no issue time', await device({ compliant: true }, { iat: null }), /"iat"/],
      ['another issuer', await device({ compliant: true }, { iss: 'https://evil.example' }), /"iss"/],
    ] as const) {
      const got = await judged(assertion);
      expect(got.effect, what).toBe('step-up');
      expect(got.why, what).toMatch(why);
    }

    // What-if shows the reason too.
    const res = await ferry.api('/api/v1/access/what-if', {
      method: 'POST',
      body: JSON.stringify({
        user: user.userName,
        target: dev,
        mfa: 'totp',
        device: await device({ compliant: true }, { sub: 'someone-else@contoso.example' }),
      }),
    });
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toContain('its sub must name the person');
  });

  it('AND needs every control, OR any one of them', async () => {
    const { decide, policy, dev, admin } = await world();
    await policy('and', { targets: [dev], grant: { require: ['mfa', 'compliant-device'], operator: 'AND' } });
    await policy('or', { targets: [admin], grant: { require: ['compliant-device', 'mfa'], operator: 'OR' } });
    expect(await decide(dev, TOTP)).toMatchObject({ effect: 'step-up', require: ['compliant-device'] });
    expect((await decide(admin, TOTP)).effect).toBe('allow');
    expect(await decide(admin, PWD)).toMatchObject({ effect: 'step-up', require: ['compliant-device'] });
  });

  it('time windows in a time zone, and outside them', async () => {
    const { decide, policy, dev } = await world();
    await policy('after-hours', {
      conditions: {
        time: {
          days: ['mon', 'tue', 'wed', 'thu', 'fri'],
          from: '08:00',
          to: '18:00',
          timezone: 'Europe/Berlin',
          outside: true,
        },
      },
      grant: { block: true },
    });
    clock.set('2026-03-02T10:00:00.000Z'); // Monday 11:00 in Berlin
    expect((await decide(dev, TOTP)).effect).toBe('allow');
    clock.set('2026-03-02T17:30:00.000Z'); // Monday 18:30 in Berlin
    const late = await decide(dev, TOTP);
    expect(late.effect).toBe('deny');
    expect(late.reasons[0]!.message).toMatch(/mon 18:30 is outside/);
    clock.set('2026-03-07T10:00:00.000Z'); // Saturday
    expect((await decide(dev, TOTP)).effect).toBe('deny');
    clock.set('2026-03-02T10:00:00.000Z');
  });

  it('session controls: credential lifetime caps maxDuration; sign-in frequency asks for a fresh sign-in', async () => {
    const { decide, policy, dev } = await world();
    await policy('short', { session: { maxCredentialLifetime: '1h', signInFrequency: '4h' } });
    const d = await decide(dev, TOTP);
    expect(d).toMatchObject({ effect: 'allow', maxDuration: 3600 });
    const old = new Date(clock.now().getTime() - 5 * 3600_000).toISOString();
    expect(await decide(dev, TOTP, {}, old)).toMatchObject({
      effect: 'step-up',
      require: ['reauthentication'],
    });
    expect((await decide(dev, TOTP, {}, null)).effect).toBe('step-up');
  });

  it('workloads are included by client and stay out of user policies; a denied assignment stays denied', async () => {
    const s = ferry.services;
    const { client } = await s.oidcClients.create(ctx, { name: unique('deployer'), kind: 'workload' });
    const { accountId, policy, decide } = await world();
    await policy('users-only', { grant: { block: true } });
    await s.policies.put(ctx, {
      name: unique('wl'),
      state: 'on',
      include: { workloads: [client.clientId] },
      targets: [`aws:${accountId}/*`],
      conditions: { clients: ['workload'] },
      grant: { block: true },
    });
    await s.assignments.add(
      ctx,
      { type: 'workload', id: client.clientId, name: client.name },
      accountId,
      'Developer',
    );
    const wl = {
      kind: 'workload' as const,
      id: client.clientId,
      userName: client.name,
      active: true,
      groups: [],
      attributes: {},
      amr: [],
      authTime: null,
    };
    const d = await s.access.decide(wl, parseTarget(`aws:${accountId}/Developer`), { client: 'workload' });
    expect(d.effect).toBe('deny');
    expect(d.reasons[0]!.message).toMatch(/blocked by policy wl-/);
    const denied = await decide(`aws:${accountId}/Nope`);
    expect(denied.effect).toBe('deny');
    expect(denied.reasons[0]!.source).toBe('target');
  });

  it('admin API: problem details for bad policies; what-if explains every policy', async () => {
    const { group, user, policy, dev } = await world();
    const bad = async (body: unknown) => {
      const res = await ferry.api(`/api/v1/policies/${unique('bad')}`, {
        method: 'PUT',
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      return ((await res.json()) as { detail: string }).detail;
    };
    expect(await bad({ targets: ['all'] })).toMatch(/include someone/);
    expect(await bad({ include: { all: true }, targets: ['aws:1/x'] })).toMatch(/targets/);
    expect(await bad({ include: { groups: ['no-such-group'] }, targets: ['all'] })).toMatch(
      /unknown group no-such-group/,
    );
    expect(
      await bad({ include: { all: true }, targets: ['all'], grant: { block: true, require: ['mfa'] } }),
    ).toMatch(/exclude each other/);
    expect(
      await bad({
        include: { all: true },
        targets: ['all'],
        conditions: { locations: { include: ['10.0.0.0/99'] } },
      }),
    ).toMatch(/CIDR/);
    expect(
      await bad({
        include: { all: true },
        targets: ['all'],
        conditions: { time: { from: '9', to: '17:00' } },
      }),
    ).toMatch(/HH:MM/);
    expect(await bad({ include: { all: true }, targets: ['all'], bogus: 1 })).toMatch(/unknown key bogus/);
    expect((await ferry.api('/api/v1/policies/nope')).status).toBe(404);

    await policy('wi-mfa', { grant: { require: ['mfa'] } });
    const res = await ferry.api('/api/v1/access/what-if', {
      method: 'POST',
      body: JSON.stringify({ user: user.userName, target: dev, ip: '198.51.100.1', client: 'cli' }),
    });
    expect(res.status).toBe(200);
    const w = (await res.json()) as {
      result: string;
      require: string[];
      policies: Array<{ policy: string; applied: boolean; why: string[] }>;
    };
    expect(w.result).toBe('step-up');
    expect(w.require).toEqual(['mfa']);
    const mine = w.policies.find((p) => p.policy === `wi-mfa-${group.displayName}`)!;
    expect(mine.applied).toBe(true);
    expect(mine.why.join(' | ')).toMatch(/included as a member of/);
    const others = w.policies.filter((p) => !p.policy.endsWith(group.displayName));
    expect(others.length).toBeGreaterThan(0);
    expect(others.every((p) => !p.applied && p.why.length === 1)).toBe(true);
    const bogus = await ferry.api('/api/v1/access/what-if', {
      method: 'POST',
      body: JSON.stringify({ user: user.userName, target: 'nope' }),
    });
    expect(bogus.status).toBe(400);
  });

  it('the tenant file carries named locations and policies; applying it twice changes nothing', async () => {
    const { group } = await world();
    const loc = unique('vpn');
    const doc = {
      namedLocations: [{ name: loc, ranges: ['10.8.0.0/16'] }],
      policies: [
        {
          name: unique('tenant-policy'),
          state: 'on',
          include: { groups: [group.displayName] },
          targets: ['aws:*/*'],
          conditions: { locations: { include: ['any'], exclude: [loc] } },
          grant: { require: ['mfa'] },
        },
      ],
    };
    const first = await applyTenant(ferry.services, ctx, doc, { dryRun: false, prune: false });
    expect(first.map((c) => [c.action, c.kind])).toEqual([
      ['create', 'named-location'],
      ['create', 'policy'],
    ]);
    expect(await applyTenant(ferry.services, ctx, doc, { dryRun: false, prune: false })).toEqual([]);
    const bad = {
      policies: [{ name: unique('bad'), include: { groups: ['Nobody-At-All'] }, targets: ['all'] }],
    };
    await expect(applyTenant(ferry.services, ctx, bad, { dryRun: false, prune: false })).rejects.toThrow(
      /tenant file: .*include.groups: unknown group Nobody-At-All/,
    );
  });

  async function apiView(name: string) {
    const res = await ferry.api(`/api/v1/policies/${encodeURIComponent(name)}`);
    const v = (await res.json()) as Record<string, unknown>;
    const { id: _i, createdAt: _c, updatedAt: _u, version: _v, ...rest } = v;
    return rest;
  }
});
