import {
  AUTHN_STRENGTHS,
  type AuthnStrength,
  authnMeaningOf,
  SAML_AUTHN_CLASS,
  SAML_CLASS_RANK,
  STRENGTH_RANK,
} from '../../authn/amr.js';

/** `<samlp:RequestedAuthnContext>` as an SP sent it (SAML Core §3.3.2.2.1). */
export interface RequestedAuthnContext {
  comparison: 'exact' | 'minimum' | 'maximum' | 'better';
  classRefs: string[];
  /** AuthnContextDeclRef: Ferry publishes no declarations, so these never match */
  declRefs: string[];
}

/** What to do about one AuthnRequest's context, given the session as it is now. */
export type AuthnContextAnswer =
  | { kind: 'assert'; classRef: string }
  | { kind: 'step-up'; require: 'mfa' | 'phishing-resistant-mfa' }
  | { kind: 'impossible'; message: string };

export interface AuthnContextInput {
  requested?: RequestedAuthnContext;
  /** the SP's own floor (configured per SP): applies whatever the request says */
  spMinimum: AuthnStrength;
  /** the session's amr */
  amr: readonly string[];
  /** false when no WebAuthn relying party is configured: phishing-resistant sign-in cannot happen */
  phishingResistantAvailable: boolean;
}

const RANK_CLASSES = Object.entries(SAML_CLASS_RANK)
  .map(([classRef, rank]) => ({ classRef, rank }))
  .sort((a, b) => a.rank - b.rank);

/** A short name for a class in messages people read. */
export function classLabel(classRef: string): string {
  switch (classRef) {
    case SAML_AUTHN_CLASS.password:
      return 'password';
    case SAML_AUTHN_CLASS.passwordProtectedTransport:
      return 'password over TLS';
    case SAML_AUTHN_CLASS.mfa:
      return 'multi-factor (REFEDS MFA)';
    case SAML_AUTHN_CLASS.phishingResistant:
      return 'phishing-resistant multi-factor';
    default:
      return classRef;
  }
}

/**
 * SAML Core §3.3.2.2.1 for the classes Ferry can assert, ranked password < password over TLS <
 * REFEDS MFA < phishing-resistant. The acceptable classes are those the comparison admits (exact: the
 * listed ones; minimum: at least as strong as one listed; better: stronger than one listed; maximum:
 * no stronger than one listed). A session of some strength can assert any class ranked at or below
 * it; the strongest acceptable one is asserted, once the session also reaches the SP's configured
 * minimum. Otherwise the weakest acceptable class above the session (or the minimum) says which
 * step-up to ask for. When no acceptable class exists (an unknown class, a declaration, `better` than
 * phishing-resistant), the answer is NoAuthnContext.
 */
export function chooseAuthnContext(input: AuthnContextInput): AuthnContextAnswer {
  const req = input.requested;
  const listed = (req?.classRefs ?? []).filter((c) => Object.hasOwn(SAML_CLASS_RANK, c));
  const listedRanks = listed.map((c) => SAML_CLASS_RANK[c]!);
  let acceptable: Array<{ classRef: string; rank: number }>;
  if (!req) acceptable = RANK_CLASSES;
  else if (listed.length === 0) acceptable = [];
  else if (req.comparison === 'exact') acceptable = RANK_CLASSES.filter((c) => listed.includes(c.classRef));
  else if (req.comparison === 'minimum')
    acceptable = RANK_CLASSES.filter((c) => c.rank >= Math.min(...listedRanks));
  else if (req.comparison === 'better')
    acceptable = RANK_CLASSES.filter((c) => c.rank > Math.min(...listedRanks));
  else acceptable = RANK_CLASSES.filter((c) => c.rank <= Math.max(...listedRanks));
  if (acceptable.length === 0) {
    return {
      kind: 'impossible',
      message: `The service provider asked for ${req ? describeRequest(req) : 'nothing'}; Ferry can assert ${RANK_CLASSES.map((c) => classLabel(c.classRef)).join(', ')}.`,
    };
  }
  // The SP's configured minimum is about the sign-in, not the class: a session must reach it, and
  // may then assert a weaker class the request asks for (an MFA sign-in also proved a password).
  const floor = STRENGTH_RANK[input.spMinimum];
  const have = STRENGTH_RANK[authnMeaningOf(input.amr).strength];
  const within = acceptable.filter((c) => c.rank <= have);
  if (have >= floor && within.length > 0)
    return { kind: 'assert', classRef: within[within.length - 1]!.classRef };
  const needed = Math.max(floor, acceptable[0]!.rank);
  const reachable = input.phishingResistantAvailable ? 3 : 2;
  if (needed > reachable)
    return {
      kind: 'impossible',
      message:
        'The service provider needs phishing-resistant sign-in, and WebAuthn is not configured on this Ferry.',
    };
  return { kind: 'step-up', require: needed >= 3 ? 'phishing-resistant-mfa' : 'mfa' };
}

function describeRequest(req: RequestedAuthnContext): string {
  const what = [...req.classRefs, ...req.declRefs.map((d) => `declaration ${d}`)];
  return `${req.comparison} ${what.length ? what.join(', ') : '(no class)'}`;
}

/** The strengths an SP's minimum may be configured to, as admins write them. */
export const MINIMUM_AUTHN_CONTEXTS: readonly AuthnStrength[] = AUTHN_STRENGTHS;
