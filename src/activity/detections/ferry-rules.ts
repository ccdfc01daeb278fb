import type { AuditEvent } from '../../audit/ledger.js';
import type { Observation } from './finding.js';
import { type DetectionSettings, globMatch } from './settings.js';

/**
 * Detections over Ferry's own audit trail: a spike of failed sign-ins per person, and the activation
 * of an administrator role (PIM). Pure: the detection service feeds them each new audit event once.
 */
export function observeAuditEvent(e: AuditEvent, settings: DetectionSettings): Observation[] {
  const at = new Date(e.time);
  if (e.type === 'signin' && e.outcome === 'failure') {
    const person = e.subject ?? (e.ip ? `address ${e.ip}` : 'unknown');
    return [
      {
        kind: 'count',
        count: {
          rule: 'signin-failure-spike',
          subject: person,
          account: null,
          occurredAt: at,
          evidence: e.id,
          details: { lastReason: e.data.reason ?? null, lastStep: e.data.step ?? null, lastIp: e.ip },
        },
      },
    ];
  }
  // pim.activation.<change>: an activation that reached `active` (granted at once or after approval).
  if (e.type.startsWith('pim.activation.') && e.data.to === 'active' && e.data.from !== 'active') {
    const target = typeof e.data.target === 'string' ? e.data.target : null;
    if (!target || !settings.administratorRoles.some((p) => globMatch(p, target))) return [];
    const person = e.subject ?? 'unknown';
    return [
      {
        kind: 'finding',
        finding: {
          rule: 'admin-role-activated',
          title: `${person} activated administrator role ${target}${typeof e.data.reason === 'string' && e.data.reason ? ` (${e.data.reason})` : ''}`,
          subject: `${person}:${target}`,
          account: /^aws:(\d{12})\//.exec(target)?.[1] ?? null,
          occurredAt: at,
          evidence: e.id,
          details: {
            person,
            target,
            activationId: e.data.activationId ?? null,
            durationSeconds: e.data.durationSeconds ?? null,
            approvals: e.data.approvals ?? [],
            ticket: e.data.ticket ?? null,
          },
        },
      },
    ];
  }
  return [];
}
