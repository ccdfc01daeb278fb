/** Who asks for access, as decide() sees it. Built by the caller from the session and the directory. */
export interface Principal {
  /** a person from the directory, or a workload identity (an OAuth client using client credentials) */
  kind: 'user' | 'workload';
  id: string;
  userName: string;
  active: boolean;
  /**
   * group ids and names the user is a member of; `expiresAt` on a membership a PIM activation granted
   * (decide() stops counting it at that instant)
   */
  groups: Array<{ id: string; name: string; expiresAt?: string | null }>;
  /** directory attributes (department, costCenter, …) */
  attributes: Record<string, string>;
  /** RFC 8176 methods of the current sign-in */
  amr: string[];
  authTime: string | null;
  /** identity protection's view of the sign-in behind this request (none when unknown) */
  signInRisk?: 'none' | 'low' | 'medium' | 'high';
}

/** The circumstances of the request. */
export interface Signals {
  ip?: string | null;
  client: 'browser' | 'cli' | 'workload';
  userAgent?: string | null;
  /** a device posture assertion (JWT) the client presented, verified by conditional access */
  deviceAssertion?: string | null;
}
