import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../test/support/db.js';
import { startTestFerry, type TestFerry } from '../../test/support/ferry.js';
import { LazySchemaCompilers } from './lazy-schemas.js';

const controller = (schemas: LazySchemaCompilers) =>
  ({ compilersFactory: schemas.compilersFactory }) as unknown as NonNullable<
    FastifyServerOptions['schemaController']
  >;

describe('route schemas compiled on first use', () => {
  let app: FastifyInstance;
  const schemas = new LazySchemaCompilers();

  beforeAll(async () => {
    app = Fastify({
      schemaController: controller(schemas),
      ajv: { customOptions: { coerceTypes: 'array', useDefaults: true, removeAdditional: false } },
    });
    app.post(
      '/things/:n',
      {
        schema: {
          params: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
          body: {
            type: 'object',
            properties: { name: { type: 'string', minLength: 2 }, tags: { type: 'array', default: [] } },
            required: ['name'],
            additionalProperties: false,
          },
          response: {
            200: {
              type: 'object',
              properties: { n: { type: 'integer' }, name: { type: 'string' }, tags: { type: 'array' } },
            },
          },
        },
      },
      async (req) => ({ ...(req.params as object), ...(req.body as object), secret: 'not in the schema' }),
    );
    app.get(
      '/other',
      { schema: { querystring: { type: 'object', properties: { q: { type: 'string' } } } } },
      async () => ({}),
    );
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('validates, coerces, fills defaults and serializes on the first request as Fastify does at start', async () => {
    const bad = await app.inject({ method: 'POST', url: '/things/7', payload: { name: 'x' } });
    expect(bad.statusCode).toBe(400);
    // the errors of the call that failed reach Fastify through the stand-in
    expect(bad.json().message).toBe('body/name must NOT have fewer than 2 characters');
    const extra = await app.inject({ method: 'POST', url: '/things/7', payload: { name: 'xy', more: 1 } });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().message).toBe('body must NOT have additional properties');
    const ok = await app.inject({ method: 'POST', url: '/things/7', payload: { name: 'xy' } });
    expect(ok.statusCode).toBe(200);
    // params coerced to an integer, the default filled in, and the serializer dropped what it does not declare
    expect(ok.body).toBe('{"n":7,"name":"xy","tags":[]}');
  });

  it('compiles what no request has needed yet, once', () => {
    // /other's querystring is still pending, for GET and for the HEAD route Fastify adds (the POST
    // route's params, body and response compiled on its first requests)
    expect(schemas.compileAll()).toBe(2);
    expect(schemas.compileAll()).toBe(0);
  });

  it('reports a schema that does not compile when compileAll runs', async () => {
    const broken = new LazySchemaCompilers();
    const b = Fastify({ schemaController: controller(broken) });
    b.get(
      '/x',
      { schema: { querystring: { type: 'object', properties: { q: { type: 'no-such-type' } } } } },
      async () => ({}),
    );
    await b.ready();
    expect(() => broken.compileAll()).toThrow(/no-such-type|type must be/);
    await b.close();
  });
});

describe.each(ENGINES)("Ferry's own routes on %s", (engine) => {
  let ferry: TestFerry;
  beforeAll(async () => {
    ferry = await startTestFerry(engine);
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('answers bad input with a problem on the first request to a route, then every schema compiles', async () => {
    const res = await ferry.api('/api/v1/users', {
      method: 'POST',
      body: JSON.stringify({ displayName: 'A' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    // Each route's schemas compile on first use; this compiles every remaining one, as a start used to.
    expect(ferry.app.compileAllSchemas()).toBeGreaterThan(300);
    expect(ferry.app.compileAllSchemas()).toBe(0);
  });
});
