import {
  checkedAddresses as checkedOutbound,
  OutboundTargetRefused,
  type ResolvedAddress,
  type TargetPolicy,
} from '../../outbound/target-guard.js';
import { Problem } from '../../problem.js';

// The guard itself lives in src/outbound/target-guard.ts (PIM and audit webhooks use it too); here
// its refusal becomes the alert API's problem (alert-sink-target-refused, a 400 at creation).

export {
  internalReason,
  isCidr,
  OutboundTargetUnresolvable as AlertSinkTargetUnresolvable,
  pinnedLookup,
  type ResolvedAddress,
  type TargetPolicy,
} from '../../outbound/target-guard.js';

/** The sink's target is internal: a 400 at creation, a failed delivery at send. */
export class AlertSinkTargetRefused extends Problem {
  constructor(
    readonly host: string,
    detail: string,
  ) {
    super(400, 'alert-sink-target-refused', 'Bad Request', detail, { host });
  }
}

/** checkedAddresses of src/outbound/target-guard.ts, refusing with AlertSinkTargetRefused. */
export async function checkedAddresses(host: string, policy: TargetPolicy): Promise<ResolvedAddress[]> {
  try {
    return await checkedOutbound(host, policy);
  } catch (err) {
    if (err instanceof OutboundTargetRefused) throw new AlertSinkTargetRefused(err.host, err.message);
    throw err;
  }
}
