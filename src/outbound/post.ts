import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { checkedAddresses, pinnedLookup, type TargetPolicy } from './target-guard.js';

export interface GuardedPostOptions {
  headers?: Record<string, string>;
  /** which addresses the target may resolve to (alerts.allowPrivateTargets, alerts.allowTargetNetworks) */
  targets: TargetPolicy;
  timeoutMs?: number;
  userAgent: string;
}

/** The target answered, but not with a 2xx (a 3xx included: redirects are not followed). */
export class OutboundHttpStatus extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = 'OutboundHttpStatus';
  }
}

/**
 * POSTs `body` to a URL an admin or operator configured, after checking every address its host
 * resolves to against `targets` (throws OutboundTargetRefused / OutboundTargetUnresolvable from
 * ./target-guard.js), connecting to exactly the checked address. node:http rather than fetch: its
 * `lookup` pins the connection to the addresses just checked. No redirects are followed (a 3xx is a
 * failure), so a target cannot bounce Ferry elsewhere. `user:password@` in the URL goes as HTTP Basic,
 * as a browser would send it. Resolves with the status (2xx); throws OutboundHttpStatus otherwise.
 * Error messages name the host or address at most, never the URL's path or query (a Slack URL is a
 * secret).
 */
export async function guardedPost(url: string, body: string, options: GuardedPostOptions): Promise<number> {
  const target = new URL(url);
  const basic: Record<string, string> =
    target.username || target.password
      ? {
          authorization: `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`,
        }
      : {};
  target.username = '';
  target.password = '';
  const addresses = await checkedAddresses(target.hostname, options.targets);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let deadline: NodeJS.Timeout | undefined;
  const status = await new Promise<number>((resolve, reject) => {
    const req = send(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': options.userAgent,
          ...basic,
          ...options.headers,
        },
        lookup: pinnedLookup(addresses),
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    const tooLate = () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`));
    // `timeout` only fires after that long with no socket activity; a target that drips a byte now
    // and then would hold the delivery (and its outbox claim) forever: the whole exchange has a deadline.
    req.on('timeout', tooLate);
    deadline = setTimeout(tooLate, timeoutMs);
    req.on('error', reject);
    req.end(body);
  }).finally(() => clearTimeout(deadline));
  if (status < 200 || status >= 300) throw new OutboundHttpStatus(status);
  return status;
}
