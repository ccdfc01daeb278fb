/** Why an upstream sign-in was refused: the audit trail records it, the page explains it. */
export type UpstreamFailure =
  | 'idp-error' // the identity provider answered with an error (AADSTS…)
  | 'state-invalid' // unknown, replayed, expired or not this browser's state
  | 'token-invalid' // the ID token or token response failed verification
  | 'tenant-not-allowed'
  | 'unknown-user'
  | 'user-conflict'
  | 'disabled'
  | 'idp-unavailable'
  | 'groups-unavailable';

const MESSAGES: Record<UpstreamFailure, { status: number; title: string; detail: string }> = {
  'idp-error': {
    status: 400,
    title: 'Microsoft sign-in did not complete',
    detail: 'Microsoft did not sign you in.',
  },
  'state-invalid': {
    status: 400,
    title: 'Sign-in expired',
    detail: 'This sign-in attempt has expired or was already used. Start again from the sign-in page.',
  },
  'token-invalid': {
    status: 401,
    title: 'Sign-in could not be verified',
    detail: 'The answer from Microsoft could not be verified, so you were not signed in. Try again.',
  },
  'tenant-not-allowed': {
    status: 403,
    title: 'Organisation not allowed',
    detail: 'Your Microsoft organisation (tenant) is not allowed to sign in to Ferry.',
  },
  'unknown-user': {
    status: 403,
    title: 'No Ferry account',
    detail:
      'Your Microsoft account is not set up in Ferry. Ask your administrator to assign you to the Ferry application in Entra ID.',
  },
  'user-conflict': {
    status: 403,
    title: 'Account not linked',
    detail:
      'A Ferry account with your user name exists but is not linked to your Microsoft account. Ask your administrator.',
  },
  disabled: {
    status: 403,
    title: 'Account disabled',
    detail: 'Your Ferry account is disabled. Ask your administrator if you think this is wrong.',
  },
  'idp-unavailable': {
    status: 503,
    title: 'Microsoft sign-in unavailable',
    detail: 'Ferry could not reach Microsoft sign-in right now. Try again in a few minutes.',
  },
  'groups-unavailable': {
    status: 502,
    title: 'Group memberships unavailable',
    detail:
      'Ferry could not read your group memberships from Microsoft Graph, so you were not signed in. Try again in a few minutes.',
  },
};

/** A refused upstream sign-in. `detail` is for the audit trail (never a token or secret). */
export class UpstreamSigninError extends Error {
  constructor(
    readonly reason: UpstreamFailure,
    readonly detail: string,
    /** shown to the person: the identity provider's own error code and text, when it sent one */
    readonly shownDetail?: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'UpstreamSigninError';
  }

  get page(): { status: number; title: string; detail: string } {
    const m = MESSAGES[this.reason];
    return this.shownDetail ? { ...m, detail: `${m.detail} ${this.shownDetail}` } : m;
  }
}
