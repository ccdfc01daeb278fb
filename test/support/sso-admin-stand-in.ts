import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalAws } from './local-aws.js';

/**
 * A stand-in for IAM Identity Center's admin API (sso-admin, JSON protocol) in front of moto, adding what
 * moto 5.2.1 lacks, so Ferry's sync meets the AWS behaviour it must handle:
 * - PutPermissionsBoundaryToPermissionSet / GetPermissionsBoundaryForPermissionSet /
 *   DeletePermissionsBoundaryFromPermissionSet (moto has no boundaries);
 * - DescribePermissionSetProvisioningStatus (moto answers ProvisionPermissionSet SUCCEEDED at once);
 * - the quota of permission sets per instance (AWS: 500 by default; moto: none) → ServiceQuotaExceededException;
 * - asynchronous account assignments: CreateAccountAssignment answers IN_PROGRESS, and the status call then
 *   says FAILED for an account outside `accounts` (AWS checks the organization; moto accepts any id);
 * - injected provisioning failures.
 * Everything else passes through to moto unchanged. Every operation is recorded.
 */
export interface SsoAdminStandIn extends Pick<LocalAws, 'endpoint' | 'region'> {
  readonly seen: string[];
  /** permission sets allowed per instance */
  maxPermissionSets: number;
  /** accounts an assignment may target; null = any */
  accounts: Set<string> | null;
  /** the next ProvisionPermissionSet ends FAILED with this reason */
  failNextProvisioning: string | null;
  stop(): Promise<void>;
}

const TARGET_PREFIX = 'SWBExternalService.';

export async function startSsoAdminStandIn(
  moto: Pick<LocalAws, 'endpoint' | 'region'>,
): Promise<SsoAdminStandIn> {
  const upstream = new URL(moto.endpoint);
  const boundaries = new Map<string, unknown>();
  const statuses = new Map<string, Record<string, unknown>>();
  const seen: string[] = [];

  const forward = (
    req: Pick<IncomingMessage, 'url' | 'method' | 'headers'>,
    body: Buffer,
  ): Promise<{ status: number; body: string; headers: Record<string, string> }> =>
    new Promise((resolve, reject) => {
      const f = request(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: upstream.host, 'content-length': String(body.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 502,
              body: Buffer.concat(chunks).toString('utf8'),
              headers: {
                'content-type': String(res.headers['content-type'] ?? 'application/x-amz-json-1.1'),
              },
            }),
          );
        },
      );
      f.on('error', reject);
      f.end(body);
    });

  const json = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
    res.end(JSON.stringify(value));
  };
  const error = (res: ServerResponse, status: number, type: string, message: string) =>
    json(res, status, { __type: type, Message: message });

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) =>
      error(res, 500, 'InternalServerException', (err as Error).message),
    );
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const target = String(req.headers['x-amz-target'] ?? '');
    if (!target.startsWith(TARGET_PREFIX)) {
      const r = await forward(req, body);
      res.writeHead(r.status, r.headers);
      res.end(r.body);
      return;
    }
    const op = target.slice(TARGET_PREFIX.length);
    seen.push(op);
    const params = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    const arn = params.PermissionSetArn as string | undefined;
    switch (op) {
      case 'PutPermissionsBoundaryToPermissionSet':
        boundaries.set(arn!, params.PermissionsBoundary);
        return json(res, 200, {});
      case 'GetPermissionsBoundaryForPermissionSet':
        if (!boundaries.has(arn!))
          return error(res, 400, 'ResourceNotFoundException', 'no permissions boundary is attached');
        return json(res, 200, { PermissionsBoundary: boundaries.get(arn!) });
      case 'DeletePermissionsBoundaryFromPermissionSet':
        boundaries.delete(arn!);
        return json(res, 200, {});
      case 'CreatePermissionSet': {
        const list = await forward(
          {
            url: req.url,
            method: req.method,
            headers: { ...req.headers, 'x-amz-target': `${TARGET_PREFIX}ListPermissionSets` },
          },
          Buffer.from(JSON.stringify({ InstanceArn: params.InstanceArn, MaxResults: 100 })),
        );
        const count = ((JSON.parse(list.body) as { PermissionSets?: string[] }).PermissionSets ?? []).length;
        if (count >= standIn.maxPermissionSets)
          return error(
            res,
            402,
            'ServiceQuotaExceededException',
            `The number of permission sets in this instance would exceed the quota of ${standIn.maxPermissionSets}`,
          );
        break;
      }
      case 'ProvisionPermissionSet': {
        const reason = standIn.failNextProvisioning;
        if (reason === null) break;
        standIn.failNextProvisioning = null;
        const id = randomUUID();
        statuses.set(id, { RequestId: id, Status: 'FAILED', FailureReason: reason, PermissionSetArn: arn });
        return json(res, 200, {
          PermissionSetProvisioningStatus: { RequestId: id, Status: 'IN_PROGRESS', PermissionSetArn: arn },
        });
      }
      case 'DescribePermissionSetProvisioningStatus': {
        const s = statuses.get(params.ProvisionPermissionSetRequestId as string);
        if (!s) return error(res, 400, 'ResourceNotFoundException', 'unknown request');
        return json(res, 200, { PermissionSetProvisioningStatus: s });
      }
      case 'CreateAccountAssignment': {
        const id = randomUUID();
        const account = params.TargetId as string;
        if (standIn.accounts && !standIn.accounts.has(account)) {
          statuses.set(id, {
            RequestId: id,
            Status: 'FAILED',
            FailureReason: `Received a 404 status error: Not supported account ${account}`,
            TargetId: account,
          });
          return json(res, 200, {
            AccountAssignmentCreationStatus: { RequestId: id, Status: 'IN_PROGRESS', TargetId: account },
          });
        }
        const r = await forward(req, body);
        if (r.status !== 200) {
          res.writeHead(r.status, r.headers);
          res.end(r.body);
          return;
        }
        // Asynchronous as in AWS: IN_PROGRESS first, the status call tells the outcome.
        const done = (JSON.parse(r.body) as { AccountAssignmentCreationStatus: Record<string, unknown> })
          .AccountAssignmentCreationStatus;
        statuses.set(id, { ...done, RequestId: id, Status: 'SUCCEEDED' });
        return json(res, 200, {
          AccountAssignmentCreationStatus: { ...done, RequestId: id, Status: 'IN_PROGRESS' },
        });
      }
      case 'DescribeAccountAssignmentCreationStatus': {
        const s = statuses.get(params.AccountAssignmentCreationRequestId as string);
        if (s) return json(res, 200, { AccountAssignmentCreationStatus: s });
        break;
      }
    }
    const r = await forward(req, body);
    res.writeHead(r.status, r.headers);
    res.end(r.body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const standIn: SsoAdminStandIn = {
    endpoint: `http://127.0.0.1:${port}`,
    region: moto.region,
    seen,
    maxPermissionSets: 500,
    accounts: null,
    failNextProvisioning: null,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return standIn;
}
