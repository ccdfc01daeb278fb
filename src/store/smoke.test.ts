import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';

describe.each(ENGINES)('server on %s', (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('creates a user through the admin API and reads it back case-insensitively', async () => {
    const created = await ferry.api('/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ userName: 'Jane@Contoso.example', displayName: 'Jane' }),
    });
    expect(created.status).toBe(201);
    const read = await ferry.api('/api/v1/users/jane@contoso.example');
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ userName: 'Jane@Contoso.example', active: true });
  });
});
