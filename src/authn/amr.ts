/**
 * The one meaning of "multi-factor" and "phishing-resistant" in Ferry. A sign-in session carries the
 * RFC 8176 `amr` values of how the person proved who they are; everything that asks "was that MFA?"
 * (conditional access, PIM rules, the `MfaMethod` session tag, the OpenID `acr` claim, the SAML
 * AuthnContextClassRef, the security-key page) reads the answer here, never from a list of its own.
 *
 * The rule: a session is multi-factor when an authority asserted it (`mfa`, Entra's `ngcmfa`) or when
 * its methods prove two different kinds of factor (something known, something held, something one
 * is). It is phishing-resistant when it is multi-factor and one of its methods is a key bound to the
 * site it signs for (WebAuthn/FIDO: `hwk`, `swk`, `fido`). docs/decisions/0023-one-meaning-of-mfa.md.
 */

type FactorKind = 'knowledge' | 'possession' | 'inherence';

interface MethodMeaning {
  /** the kind of factor it proves; absent for values that prove none by themselves (fed, user, …) */
  factor?: FactorKind;
  /** an authority (Ferry after a second factor, or the upstream IdP) states the sign-in was multi-factor */
  assertsMfa?: true;
  /** proof of a key bound to the relying party's origin: a phishing site cannot replay it */
  phishingResistant?: true;
}

/** RFC 8176 §2 values (and Entra ID's additions) and what each one proves. Unknown values prove nothing. */
export const AMR_METHODS: Readonly<Record<string, MethodMeaning>> = {
  pwd: { factor: 'knowledge' },
  pin: { factor: 'knowledge' },
  kba: { factor: 'knowledge' },
  otp: { factor: 'possession' },
  sms: { factor: 'possession' },
  tel: { factor: 'possession' },
  sc: { factor: 'possession' },
  rsa: { factor: 'possession' },
  hwk: { factor: 'possession', phishingResistant: true },
  swk: { factor: 'possession', phishingResistant: true },
  fido: { factor: 'possession', phishingResistant: true },
  face: { factor: 'inherence' },
  fpt: { factor: 'inherence' },
  iris: { factor: 'inherence' },
  retina: { factor: 'inherence' },
  vbm: { factor: 'inherence' },
  mfa: { assertsMfa: true },
  ngcmfa: { assertsMfa: true },
};

/** The strength of a sign-in, weakest first: the order SAML `minimum`/`better` comparisons use. */
export const AUTHN_STRENGTHS = ['single-factor', 'mfa', 'phishing-resistant'] as const;
export type AuthnStrength = (typeof AUTHN_STRENGTHS)[number];

/** SAML authentication context classes Ferry asserts and understands in RequestedAuthnContext. */
export const SAML_AUTHN_CLASS = {
  password: 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password',
  passwordProtectedTransport: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
  /** REFEDS MFA profile: two distinct factors */
  mfa: 'https://refeds.org/profile/mfa',
  /** the phishing-resistant class (NIST SP 800-63B AAL2 with a verifier-impersonation-resistant authenticator) */
  phishingResistant: 'http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true',
} as const;

/** OpenID `acr` values (REFEDS profiles; the same URI as SAML for MFA). */
export const ACR = {
  mfa: 'https://refeds.org/profile/mfa',
  singleFactor: 'https://refeds.org/profile/sfa',
} as const;

/** What one session's amr means to every consumer. */
export interface AuthnMeaning {
  mfa: boolean;
  phishingResistant: boolean;
  strength: AuthnStrength;
  /** the `MfaMethod` session tag: how the second factor was proved (IAM policies can require it) */
  mfaMethod: 'webauthn' | 'totp' | 'other' | 'none';
  /** the OpenID `acr` claim */
  acr: string;
  /** the SAML AuthnContextClassRef an assertion states when the SP asked for nothing in particular */
  samlAuthnContext: string;
}

export function authnMeaningOf(amr: readonly string[]): AuthnMeaning {
  const known = amr.filter((m) => Object.hasOwn(AMR_METHODS, m)).map((m) => AMR_METHODS[m]!);
  const kinds = new Set(known.flatMap((m) => (m.factor ? [m.factor] : [])));
  const mfa = known.some((m) => m.assertsMfa) || kinds.size >= 2;
  const phishingResistant = mfa && known.some((m) => m.phishingResistant);
  const strength: AuthnStrength = phishingResistant ? 'phishing-resistant' : mfa ? 'mfa' : 'single-factor';
  return {
    mfa,
    phishingResistant,
    strength,
    mfaMethod: phishingResistant ? 'webauthn' : !mfa ? 'none' : amr.includes('otp') ? 'totp' : 'other',
    acr: mfa ? ACR.mfa : ACR.singleFactor,
    samlAuthnContext: SAML_CLASS_OF_STRENGTH[strength],
  };
}

export const hasMfa = (amr: readonly string[]): boolean => authnMeaningOf(amr).mfa;
export const hasPhishingResistantMfa = (amr: readonly string[]): boolean =>
  authnMeaningOf(amr).phishingResistant;
export const mfaMethodOf = (amr: readonly string[]): AuthnMeaning['mfaMethod'] =>
  authnMeaningOf(amr).mfaMethod;
export const acrOf = (amr: readonly string[]): string => authnMeaningOf(amr).acr;

/** The class that says exactly what a sign-in of this strength was. */
export const SAML_CLASS_OF_STRENGTH: Readonly<Record<AuthnStrength, string>> = {
  'single-factor': SAML_AUTHN_CLASS.passwordProtectedTransport,
  mfa: SAML_AUTHN_CLASS.mfa,
  'phishing-resistant': SAML_AUTHN_CLASS.phishingResistant,
};

/**
 * Every SAML class Ferry can assert, by rank (SAML Core §3.3.2.2.1 "strength"): a session of a
 * strength may assert any class ranked at or below it (an MFA sign-in did prove a password over TLS).
 */
export const SAML_CLASS_RANK: Readonly<Record<string, number>> = {
  [SAML_AUTHN_CLASS.password]: 0,
  [SAML_AUTHN_CLASS.passwordProtectedTransport]: 1,
  [SAML_AUTHN_CLASS.mfa]: 2,
  [SAML_AUTHN_CLASS.phishingResistant]: 3,
};
export const STRENGTH_RANK: Readonly<Record<AuthnStrength, number>> = {
  'single-factor': 1,
  mfa: 2,
  'phishing-resistant': 3,
};

/** The amr each of Ferry's own ways of signing in gives a session (what the table-driven test walks). */
export const SIGN_IN_METHODS: Readonly<Record<string, readonly string[]>> = {
  password: ['pwd'],
  'password + TOTP': ['pwd', 'otp', 'mfa'],
  'password + recovery code': ['pwd', 'otp', 'mfa'],
  'password + security key or passkey': ['pwd', 'hwk', 'mfa'],
  'password + TOTP, then a security key': ['pwd', 'otp', 'mfa', 'hwk'],
  'Entra ID, no amr': ['fed'],
  'Entra ID password': ['pwd'],
  'Entra ID password + MFA': ['pwd', 'mfa'],
  'Entra ID Windows Hello (ngcmfa)': ['ngcmfa', 'mfa'],
  'Entra ID FIDO2 key': ['fido', 'mfa'],
  'Entra ID password + RSA token': ['pwd', 'rsa'],
  'Entra ID password + SMS': ['pwd', 'sms'],
  'Entra ID smart card': ['sc', 'pin'],
  'a one-time code alone': ['otp'],
};
