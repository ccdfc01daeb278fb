import { expect } from 'vitest';
import type { TestFerry } from './ferry.js';

export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

export interface ScimResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { Resources?: Array<Record<string, unknown>> };
}

/** A SCIM client the way Entra ID talks: Bearer token, application/scim+json both ways. */
export interface ScimClient {
  token: string;
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ScimResponse>;
  get(path: string, headers?: Record<string, string>): Promise<ScimResponse>;
  post(path: string, body: unknown): Promise<ScimResponse>;
  patch(path: string, ops: unknown[], headers?: Record<string, string>): Promise<ScimResponse>;
  put(path: string, body: unknown, headers?: Record<string, string>): Promise<ScimResponse>;
  del(path: string, headers?: Record<string, string>): Promise<ScimResponse>;
}

export async function scimClient(
  ferry: TestFerry,
  name = 'entra',
  options: { passwordWrites?: boolean } = {},
): Promise<ScimClient & { connectionId: string }> {
  const { token, connection } = await ferry.services.scimConnections.create(
    { actor: { type: 'operator', name: 'test' } },
    { name, passwordWrites: options.passwordWrites },
  );
  const request = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const h: Record<string, string> = {
      authorization: `Bearer ${token}`,
      accept: 'application/scim+json',
      ...headers,
    };
    let payload: string | undefined;
    if (body !== undefined) {
      h['content-type'] ??= 'application/scim+json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const res = await fetch(new URL(`/scim/v2${path}`, ferry.url), { method, headers: h, body: payload });
    const text = await res.text();
    if (text !== '') expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
  };
  return {
    token,
    connectionId: connection.id,
    request,
    get: (path, headers) => request('GET', path, undefined, headers),
    post: (path, body) => request('POST', path, body),
    patch: (path, ops, headers) => request('PATCH', path, { schemas: [PATCH_OP], Operations: ops }, headers),
    put: (path, body, headers) => request('PUT', path, body, headers),
    del: (path, headers) => request('DELETE', path, undefined, headers),
  };
}

/** Asserts a SCIM Error response (RFC 7644 §3.12) and returns its body. */
export function expectScimError(
  res: ScimResponse,
  status: number,
  scimType?: string,
): Record<string, unknown> {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
  expect(res.body.status).toBe(String(status));
  expect(typeof res.body.detail).toBe('string');
  if (scimType) expect(res.body.scimType).toBe(scimType);
  return res.body;
}

export const filterQuery = (filter: string) => `filter=${encodeURIComponent(filter)}`;
