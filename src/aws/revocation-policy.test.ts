import { describe, expect, it } from 'vitest';
import { evaluateSession, type SimulatedSession } from '../../test/support/iam-simulate.js';
import {
  cutoffText,
  INLINE_ROLE_POLICY_LIMIT,
  policySize,
  RevocationPolicyTooLarge,
  revocationPolicy,
  stillNeeded,
} from './revocation-policy.js';

const ACCOUNT = '123456789012';
const ALICE = 'alice@contoso.example';
const BOB = 'bob@contoso.example';
const CUTOFF = new Date('2026-03-01T12:00:00.000Z');

/** IAM's own evaluation (as iam-simulate models it) of one request by a session of the Developer role. */
const evaluate = (
  revocation: unknown,
  session: SimulatedSession,
  action?: string,
  resource = 'arn:aws:s3:::reports/q1.csv',
): Promise<string> =>
  evaluateSession(revocation, session, { account: ACCOUNT, ...(action ? { action } : {}), resource });

describe('the FerryRevokedSessions policy, judged by an IAM policy simulator', () => {
  const policy = revocationPolicy([{ sourceIdentity: ALICE, cutoff: CUTOFF }]);

  it('is the revoke-older-sessions deny narrowed to one source identity', () => {
    expect(policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'Revoked1',
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: {
            StringEquals: { 'aws:SourceIdentity': ALICE },
            DateLessThan: { 'aws:TokenIssueTime': '2026-03-01T12:00:00Z' },
          },
        },
      ],
    });
  });

  it('denies the revoked person a session issued before the cutoff, for any action', async () => {
    const old = { sourceIdentity: ALICE, issuedAt: '2026-03-01T11:59:59Z' };
    expect(await evaluate(null, old)).toBe('Allowed');
    expect(await evaluate(policy, old)).toBe('ExplicitlyDenied');
    expect(await evaluate(policy, old, 'iam:ListRoles', '*')).toBe('ExplicitlyDenied');
    // A session issued hours earlier too: it is still within the role's MaxSessionDuration.
    expect(await evaluate(policy, { sourceIdentity: ALICE, issuedAt: '2026-03-01T01:00:00Z' })).toBe(
      'ExplicitlyDenied',
    );
  });

  it('allows the same person a session issued at or after the cutoff (re-enabled later)', async () => {
    expect(await evaluate(policy, { sourceIdentity: ALICE, issuedAt: '2026-03-01T12:00:00Z' })).toBe(
      'Allowed',
    );
    expect(await evaluate(policy, { sourceIdentity: ALICE, issuedAt: '2026-03-01T12:30:00Z' })).toBe(
      'Allowed',
    );
  });

  it('PIM: ends the sessions of an activation revoked at 09:40 (cutoff with 60 s skew), not those of the next activation', async () => {
    // aws.sessions-revoke-requested written at the revocation; the handler adds aws.revocationClockSkew.
    const revokedAt = new Date('2026-03-02T09:40:00.000Z');
    const pim = revocationPolicy([{ sourceIdentity: ALICE, cutoff: new Date(revokedAt.getTime() + 60_000) }]);
    // `ferry creds` during the activation (09:00–10:00), at its start and just before the revocation.
    expect(await evaluate(pim, { sourceIdentity: ALICE, issuedAt: '2026-03-02T09:00:05Z' })).toBe(
      'ExplicitlyDenied',
    );
    expect(
      await evaluate(pim, { sourceIdentity: ALICE, issuedAt: '2026-03-02T09:39:59Z' }, 'iam:ListRoles', '*'),
    ).toBe('ExplicitlyDenied');
    // A new activation approved later: its sessions start after the cutoff and work.
    expect(await evaluate(pim, { sourceIdentity: ALICE, issuedAt: '2026-03-02T09:45:00Z' })).toBe('Allowed');
    // An administrator who holds the role by a standing assignment is untouched.
    expect(await evaluate(pim, { sourceIdentity: BOB, issuedAt: '2026-03-02T09:10:00Z' })).toBe('Allowed');
  });

  it('leaves a colleague on the same role untouched, whenever their session began', async () => {
    expect(await evaluate(policy, { sourceIdentity: BOB, issuedAt: '2026-03-01T11:00:00Z' })).toBe('Allowed');
    // Source identities compare exactly (StringEquals): a look-alike differing in case is someone else.
    expect(
      await evaluate(policy, { sourceIdentity: 'Alice@contoso.example', issuedAt: '2026-03-01T11:00:00Z' }),
    ).toBe('Allowed');
  });

  it('does not touch sessions without a source identity (why the trust policy must require one)', async () => {
    expect(await evaluate(policy, { issuedAt: '2026-03-01T11:00:00Z' })).toBe('Allowed');
  });

  it('keeps each person to their own cutoff when several are revoked on one role', async () => {
    const later = new Date('2026-03-01T15:00:00Z');
    const both = revocationPolicy([
      { sourceIdentity: BOB, cutoff: later },
      { sourceIdentity: ALICE, cutoff: CUTOFF },
    ]);
    expect(both?.Statement).toHaveLength(2);
    const at1300 = '2026-03-01T13:00:00Z';
    expect(await evaluate(both, { sourceIdentity: ALICE, issuedAt: at1300 })).toBe('Allowed');
    expect(await evaluate(both, { sourceIdentity: BOB, issuedAt: at1300 })).toBe('ExplicitlyDenied');
    expect(await evaluate(both, { sourceIdentity: 'carol@contoso.example', issuedAt: at1300 })).toBe(
      'Allowed',
    );
  });

  it('folds many people into fewer statements to stay under the inline policy limit, denying no less', async () => {
    const many = Array.from({ length: 120 }, (_, i) => ({
      sourceIdentity: `person-${String(i).padStart(3, '0')}-with-a-long-upn@contoso.example`,
      cutoff: new Date(CUTOFF.getTime() + (i % 3) * 60_000),
    }));
    const doc = revocationPolicy(many)!;
    expect(policySize(doc)).toBeLessThanOrEqual(INLINE_ROLE_POLICY_LIMIT);
    expect(doc.Statement).toHaveLength(3); // one per distinct cutoff
    for (const who of [many[0]!, many[1]!, many[119]!]) {
      const before = new Date(who.cutoff.getTime() - 1000).toISOString();
      expect(await evaluate(doc, { sourceIdentity: who.sourceIdentity, issuedAt: before })).toBe(
        'ExplicitlyDenied',
      );
    }
    expect(await evaluate(doc, { sourceIdentity: BOB, issuedAt: '2026-03-01T11:00:00Z' })).toBe('Allowed');
  });

  it('folds everyone into one statement with the latest cutoff when cutoffs all differ', async () => {
    const many = Array.from({ length: 100 }, (_, i) => ({
      sourceIdentity: `person-${i}@contoso.example`,
      cutoff: new Date(CUTOFF.getTime() + i * 1000),
    }));
    const doc = revocationPolicy(many)!;
    expect(doc.Statement).toHaveLength(1);
    expect(doc.Statement[0]!.Condition.DateLessThan['aws:TokenIssueTime']).toBe(cutoffText(many[99]!.cutoff));
    const early = { sourceIdentity: 'person-0@contoso.example', issuedAt: '2026-03-01T11:00:00Z' };
    expect(await evaluate(doc, early)).toBe('ExplicitlyDenied');
  });

  it('refuses what cannot fit even folded', () => {
    const huge = Array.from({ length: 400 }, (_, i) => ({
      sourceIdentity: `p${i}-${'x'.repeat(40)}@contoso.example`,
      cutoff: new Date(CUTOFF.getTime() + i * 1000),
    }));
    expect(() => revocationPolicy(huge)).toThrow(RevocationPolicyTooLarge);
  });

  it('has nothing to write for nobody, rounds cutoffs up to whole seconds, and forgets expired entries', () => {
    expect(revocationPolicy([])).toBeNull();
    expect(cutoffText(new Date('2026-03-01T12:00:00.001Z'))).toBe('2026-03-01T12:00:01Z');
    const entry = { sourceIdentity: ALICE, cutoff: CUTOFF };
    expect(stillNeeded(entry, new Date('2026-03-01T12:59:59Z'), 3600)).toBe(true);
    expect(stillNeeded(entry, new Date('2026-03-01T13:00:00Z'), 3600)).toBe(false);
    expect(stillNeeded(entry, new Date('2026-03-01T13:00:00Z'), 43_200)).toBe(true);
  });
});
