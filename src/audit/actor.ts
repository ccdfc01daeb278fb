/** Who did something, as the audit trail records it. */
export type Actor =
  | { type: 'user'; id: string; name: string }
  | { type: 'api-token'; id: string; name: string }
  | { type: 'workload'; id: string; name: string } // an OAuth client using client credentials
  | { type: 'scim-connection'; id: string; name: string } // a provisioning client such as Entra ID
  | { type: 'operator'; name: string } // a command run beside the server's config (e.g. bootstrap)
  | { type: 'system'; name: string } // a background worker
  | { type: 'anonymous' };

export const anonymous: Actor = { type: 'anonymous' };
export const systemActor = (name: string): Actor => ({ type: 'system', name });

/** Who acts and from where: carried from the HTTP layer (or CLI) into every audited change. */
export interface AuditContext {
  actor: Actor;
  ip?: string | null;
  requestId?: string | null;
}

export function actorName(actor: Actor): string {
  return actor.type === 'anonymous' ? 'anonymous' : `${actor.type}:${actor.name}`;
}
