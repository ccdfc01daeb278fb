import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigInvalid, configSchema, loadConfig } from './config.js';
import { entraOptionsOf } from './upstream.js';

const tid = randomUUID();
const entra = (extra: Record<string, unknown> = {}) =>
  configSchema.parse({
    publicUrl: 'https://ferry.contoso.example',
    upstream: {
      entra: {
        issuer: `https://login.microsoftonline.com/${tid}/v2.0`,
        clientId: 'app-id',
        clientSecret: 's3cret',
        ...extra,
      },
    },
  });

describe('upstream.entra configuration', () => {
  it('is off unless configured', () => {
    expect(entraOptionsOf(configSchema.parse({}))).toBeNull();
  });

  it('defaults: the issuer’s tenant allowed, provisioned users, redirect URI under the public URL', () => {
    const o = entraOptionsOf(entra())!;
    expect(o.allowedTenants).toEqual([tid]);
    expect(o.userMapping).toBe('provisioned');
    expect(o.syncGroups).toBe(false);
    expect(o.redirectUri()).toBe('https://ferry.contoso.example/signin/entra/callback');
    expect(o.graphUrl).toBe('https://graph.microsoft.com');
    expect(o.clockToleranceSeconds).toBe(120);
    expect(entraOptionsOf(entra({ userMapping: 'jit' }))!.syncGroups).toBe(true);
  });

  it('a multi-tenant issuer needs allowedTenants', () => {
    const multi = { issuer: 'https://login.microsoftonline.com/organizations/v2.0' };
    expect(() => entraOptionsOf(entra(multi))).toThrow(/allowedTenants: a multi-tenant issuer/);
    const other = randomUUID().toUpperCase();
    expect(entraOptionsOf(entra({ ...multi, allowedTenants: [other] }))!.allowedTenants).toEqual([
      other.toLowerCase(),
    ]);
    expect(() => entra({ allowedTenants: ['contoso'] })).toThrow(/tenant id/);
  });

  it('requires a client secret, from the file, a file beside it, or FERRY_ENTRA_CLIENT_SECRET', () => {
    expect(() => entraOptionsOf(entra({ clientSecret: undefined }))).toThrow(ConfigInvalid);
    const dir = mkdtempSync(join(tmpdir(), 'ferry-entra-config-'));
    writeFileSync(join(dir, 'secret'), 'from-file\n');
    const path = join(dir, 'ferry.yaml');
    writeFileSync(
      path,
      `upstream:\n  entra:\n    issuer: https://login.microsoftonline.com/${tid}/v2.0\n    clientId: app-id\n    clientSecretFile: secret\n`,
    );
    expect(entraOptionsOf(loadConfig(path, {}).config)!.clientSecret).toBe('from-file');
    expect(
      entraOptionsOf(loadConfig(path, { FERRY_ENTRA_CLIENT_SECRET: 'from-env' }).config)!.clientSecret,
    ).toBe('from-env');
    expect(() => entraOptionsOf(loadConfig(path, {}).config, path)).not.toThrow();
    writeFileSync(join(dir, 'plain.yaml'), 'log:\n  level: info\n');
    // The secret alone does not switch Entra sign-in on.
    expect(
      loadConfig(join(dir, 'plain.yaml'), { FERRY_ENTRA_CLIENT_SECRET: 'x' }).config.upstream.entra,
    ).toBeUndefined();
  });
});
