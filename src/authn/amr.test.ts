import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../access/decision.js';
import { ConditionalAccessEngine, type PolicySource } from '../access/policies/engine.js';
import type { PolicyDefinition } from '../access/policies/policy.js';
import type { Principal } from '../access/principal.js';
import { ManualClock } from '../clock.js';
import { acrOf as oidcAcrOf } from '../federation/oidc/provider.js';
import { chooseAuthnContext } from '../federation/saml/authn-context.js';
import { ACR, authnMeaningOf, SAML_AUTHN_CLASS, SIGN_IN_METHODS } from './amr.js';

/** What every consumer must conclude for each way of signing in. */
const EXPECTED: Record<
  keyof typeof SIGN_IN_METHODS,
  { mfa: boolean; phishingResistant: boolean; tag: 'webauthn' | 'totp' | 'other' | 'none' }
> = {
  password: { mfa: false, phishingResistant: false, tag: 'none' },
  'password + TOTP': { mfa: true, phishingResistant: false, tag: 'totp' },
  'password + recovery code': { mfa: true, phishingResistant: false, tag: 'totp' },
  'password + security key or passkey': { mfa: true, phishingResistant: true, tag: 'webauthn' },
  'password + TOTP, then a security key': { mfa: true, phishingResistant: true, tag: 'webauthn' },
  'Entra ID, no amr': { mfa: false, phishingResistant: false, tag: 'none' },
  'Entra ID password': { mfa: false, phishingResistant: false, tag: 'none' },
  'Entra ID password + MFA': { mfa: true, phishingResistant: false, tag: 'other' },
  'Entra ID Windows Hello (ngcmfa)': { mfa: true, phishingResistant: false, tag: 'other' },
  'Entra ID FIDO2 key': { mfa: true, phishingResistant: true, tag: 'webauthn' },
  'Entra ID password + RSA token': { mfa: true, phishingResistant: false, tag: 'other' },
  'Entra ID password + SMS': { mfa: true, phishingResistant: false, tag: 'other' },
  'Entra ID smart card': { mfa: true, phishingResistant: false, tag: 'other' },
  'a one-time code alone': { mfa: false, phishingResistant: false, tag: 'none' },
};

const NOW = '2026-03-02T10:00:00.000Z';

/** Conditional access without a database: one policy per grant control on its own target. */
function engineWith(
  policies: Array<{ name: string; target: string; require: PolicyDefinition['grant']['require'] }>,
) {
  const source: PolicySource = {
    generation: async () => 1,
    active: async () =>
      policies.map((p, i) => ({
        id: `p${i}`,
        version: 1,
        name: p.name,
        state: 'on',
        definition: JSON.stringify({
          include: { all: true, users: [], groups: [], workloads: [] },
          exclude: { users: [], groups: [], workloads: [] },
          targets: [p.target],
          excludeTargets: [],
          conditions: {},
          grant: { block: false, require: p.require, operator: 'AND' },
          session: {},
        } satisfies PolicyDefinition),
      })),
    locations: async () => new Map(),
    userRisk: async () => 'none',
    country: () => null,
    recordReportOnly: async () => {},
  };
  return new ConditionalAccessEngine(source, new ManualClock(NOW));
}

const allow: Decision = { effect: 'allow', maxDuration: 3600, sessionTags: {}, reasons: [] };
const person = (amr: readonly string[]): Principal => ({
  kind: 'user',
  id: 'u1',
  userName: 'person@contoso.example',
  active: true,
  groups: [],
  attributes: {},
  amr: [...amr],
  authTime: NOW,
});

describe('one meaning of MFA, every sign-in method against every consumer', () => {
  const ca = engineWith([
    { name: 'mfa', target: 'app:mfa-app', require: ['mfa'] },
    { name: 'phishing-resistant', target: 'app:pr-app', require: ['phishing-resistant-mfa'] },
  ]);

  it.each(Object.entries(SIGN_IN_METHODS))('%s', async (method, amr) => {
    const want = EXPECTED[method as keyof typeof SIGN_IN_METHODS]!;
    const meaning = authnMeaningOf(amr);
    expect({ mfa: meaning.mfa, phishingResistant: meaning.phishingResistant }).toEqual({
      mfa: want.mfa,
      phishingResistant: want.phishingResistant,
    });

    // Conditional access: an MFA policy and a phishing-resistant policy, and the MfaMethod tag.
    const signals = { client: 'browser' as const };
    const mfaApp = await ca.apply(person(amr), { kind: 'app', name: 'mfa-app' }, signals, allow);
    expect(mfaApp.effect).toBe(want.mfa ? 'allow' : 'step-up');
    if (mfaApp.effect === 'allow') expect(mfaApp.sessionTags.MfaMethod).toBe(want.tag);
    const prApp = await ca.apply(person(amr), { kind: 'app', name: 'pr-app' }, signals, allow);
    expect(prApp.effect).toBe(want.phishingResistant ? 'allow' : 'step-up');
    const open = await ca.apply(person(amr), { kind: 'app', name: 'other' }, signals, allow);
    expect(open.effect === 'allow' && open.sessionTags.MfaMethod).toBe(want.tag);

    // PIM's "requires MFA" rule reads the same answer (activations.ts calls hasMfa).
    // OpenID: the acr claim of ID tokens and the device sign-in.
    expect(oidcAcrOf(amr as string[])).toBe(want.mfa ? ACR.mfa : ACR.singleFactor);

    // SAML: what an assertion states unasked, and whether an SP asking for REFEDS MFA or the
    // phishing-resistant class gets it now or is sent to step up.
    const unasked = chooseAuthnContext({ spMinimum: 'single-factor', amr, phishingResistantAvailable: true });
    expect(unasked).toEqual({
      kind: 'assert',
      classRef: want.phishingResistant
        ? SAML_AUTHN_CLASS.phishingResistant
        : want.mfa
          ? SAML_AUTHN_CLASS.mfa
          : SAML_AUTHN_CLASS.passwordProtectedTransport,
    });
    const askMfa = chooseAuthnContext({
      requested: { comparison: 'minimum', classRefs: [SAML_AUTHN_CLASS.mfa], declRefs: [] },
      spMinimum: 'single-factor',
      amr,
      phishingResistantAvailable: true,
    });
    expect(askMfa.kind).toBe(want.mfa ? 'assert' : 'step-up');
    const askPr = chooseAuthnContext({
      requested: { comparison: 'exact', classRefs: [SAML_AUTHN_CLASS.phishingResistant], declRefs: [] },
      spMinimum: 'single-factor',
      amr,
      phishingResistantAvailable: true,
    });
    expect(askPr).toEqual(
      want.phishingResistant
        ? { kind: 'assert', classRef: SAML_AUTHN_CLASS.phishingResistant }
        : { kind: 'step-up', require: 'phishing-resistant-mfa' },
    );
  });

  it('is the only list: no module outside src/authn/ names second-factor amr values itself', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) {
          if (name !== 'authn') walk(path);
        } else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) {
          const text = readFileSync(path, 'utf8');
          // A set or array literal that lists 'otp' or 'hwk' next to other amr values is a private list.
          if (/\[[^\]]*'(otp|hwk)'[^\]]*'(mfa|hwk|otp|swk|fido|sms)'[^\]]*\]/.test(text))
            offenders.push(path);
        }
      }
    };
    walk(join(import.meta.dirname, '..'));
    // signin.ts writes the amr of a sign-in (what happened), policies/routes.ts simulates one for what-if.
    expect(offenders.filter((p) => !/identity[\\/]signin\.ts$|policies[\\/]routes\.ts$/.test(p))).toEqual([]);
  });
});

describe('SAML RequestedAuthnContext comparisons (SAML Core §3.3.2.2.1)', () => {
  const PWD = ['pwd'];
  const MFA = ['pwd', 'otp', 'mfa'];
  const ask = (
    comparison: 'exact' | 'minimum' | 'maximum' | 'better',
    classRefs: string[],
    amr: string[],
    extra: { spMinimum?: 'single-factor' | 'mfa' | 'phishing-resistant'; pr?: boolean } = {},
  ) =>
    chooseAuthnContext({
      requested: { comparison, classRefs, declRefs: [] },
      spMinimum: extra.spMinimum ?? 'single-factor',
      amr,
      phishingResistantAvailable: extra.pr ?? true,
    });
  const { password, passwordProtectedTransport: ppt, mfa, phishingResistant: pr } = SAML_AUTHN_CLASS;

  it.each([
    ['exact PPT, password session', 'exact', [ppt], PWD, { kind: 'assert', classRef: ppt }],
    ['exact PPT, MFA session: the class asked for', 'exact', [ppt], MFA, { kind: 'assert', classRef: ppt }],
    ['exact Password, password session', 'exact', [password], PWD, { kind: 'assert', classRef: password }],
    ['exact MFA, password session: step up', 'exact', [mfa], PWD, { kind: 'step-up', require: 'mfa' }],
    ['exact of two, the strongest within reach', 'exact', [ppt, mfa], MFA, { kind: 'assert', classRef: mfa }],
    ['minimum PPT, MFA session: what happened', 'minimum', [ppt], MFA, { kind: 'assert', classRef: mfa }],
    ['minimum MFA, password session: step up', 'minimum', [mfa], PWD, { kind: 'step-up', require: 'mfa' }],
    ['better PPT, password session: step up', 'better', [ppt], PWD, { kind: 'step-up', require: 'mfa' }],
    [
      'better MFA, MFA session: phishing-resistant',
      'better',
      [mfa],
      MFA,
      { kind: 'step-up', require: 'phishing-resistant-mfa' },
    ],
    ['maximum MFA, MFA session', 'maximum', [mfa], MFA, { kind: 'assert', classRef: mfa }],
    ['maximum PPT, MFA session: not above PPT', 'maximum', [ppt], MFA, { kind: 'assert', classRef: ppt }],
  ] as const)('%s', (_name, comparison, classRefs, amr, answer) => {
    expect(ask(comparison, [...classRefs], [...amr])).toEqual(answer);
  });

  it('answers NoAuthnContext for classes, declarations and comparisons Ferry cannot meet', () => {
    expect(ask('exact', ['urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos'], MFA).kind).toBe('impossible');
    expect(ask('better', [pr], MFA).kind).toBe('impossible');
    expect(ask('exact', [pr], MFA, { pr: false }).kind).toBe('impossible');
    expect(
      chooseAuthnContext({
        requested: { comparison: 'exact', classRefs: [], declRefs: ['urn:example:decl'] },
        spMinimum: 'single-factor',
        amr: MFA,
        phishingResistantAvailable: true,
      }).kind,
    ).toBe('impossible');
  });

  it('holds every session to the SP minimum, then asserts what the request asked', () => {
    expect(ask('exact', [ppt], PWD, { spMinimum: 'mfa' })).toEqual({ kind: 'step-up', require: 'mfa' });
    expect(ask('exact', [ppt], MFA, { spMinimum: 'mfa' })).toEqual({ kind: 'assert', classRef: ppt });
    expect(ask('minimum', [ppt], MFA, { spMinimum: 'phishing-resistant' })).toEqual({
      kind: 'step-up',
      require: 'phishing-resistant-mfa',
    });
  });
});
