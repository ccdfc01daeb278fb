import { describe, expect, it } from 'vitest';
import { accountConnection, partitionRegion } from './account-clients.js';

describe('accountConnection: how issuance and revocation both reach an account', () => {
  it.each([
    ['aws', 'eu-central-1'],
    ['aws-us-gov', 'us-gov-west-1'],
    ['aws-cn', 'cn-north-1'],
  ] as const)('talks to a %s account in %s', (partition, region) => {
    expect(partitionRegion(partition, 'eu-central-1')).toBe(region);
    expect(
      accountConnection({ id: '123456789012', partition, endpointUrl: null }, { region: 'eu-central-1' }),
    ).toEqual({ accountId: '123456789012', partition, region });
  });

  it("prefers the account's own endpoint, then the configured local AWS, then AWS itself", () => {
    const gov = { id: '123456789012', partition: 'aws-us-gov' as const };
    const defaults = { region: 'us-east-1', endpoint: 'http://127.0.0.1:5000' };
    expect(accountConnection({ ...gov, endpointUrl: 'http://127.0.0.1:6000' }, defaults).endpoint).toBe(
      'http://127.0.0.1:6000',
    );
    expect(accountConnection({ ...gov, endpointUrl: null }, defaults)).toMatchObject({
      endpoint: 'http://127.0.0.1:5000',
      region: 'us-gov-west-1',
    });
    expect(
      accountConnection({ ...gov, endpointUrl: null }, { region: 'us-east-1', endpoint: null }),
    ).not.toHaveProperty('endpoint');
  });
});
