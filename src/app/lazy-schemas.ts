import { createRequire } from 'node:module';

/**
 * Route schemas compiled on a route's first request instead of at start (ADR 0046). Fastify compiles
 * every validator (Ajv) and response serializer (fast-json-stringify) of every route when it is
 * registered: with some 400 routes that was about a fifth of a warm start's CPU time, and their
 * generated code stayed in memory for routes a deployment never serves. Here each compiled function
 * is a stand-in that compiles the real one on its first call with Fastify's own default compilers
 * (same Ajv options, same shared schemas), so behaviour is unchanged. `compileAll()` compiles whatever
 * is still pending: the tests call it so that a schema that does not compile fails a test, as it used
 * to fail the start. Header schemas are not lower-cased by Fastify for a custom compiler: their
 * property names must be written in lower case (no route declares one today).
 */

interface Route {
  schema: unknown;
  method?: string;
  url?: string;
  httpPart?: string;
  httpStatus?: string;
  contentType?: string;
}
type Validate = ((data: unknown) => unknown) & { errors?: unknown };
type Serialize = (data: unknown) => string;
type Factory<F> = (externalSchemas: unknown, options: unknown) => (route: Route) => F;

// Fastify's own dependencies, loaded from where Fastify loads them (the same module instances).
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
const defaultValidators = (): Factory<Validate> =>
  (fromFastify('@fastify/ajv-compiler') as () => Factory<Validate>)();
const defaultSerializers = (): Factory<Serialize> =>
  (fromFastify('@fastify/fast-json-stringify-compiler') as () => Factory<Serialize>)();

export class LazySchemaCompilers {
  readonly #pending = new Set<() => void>();

  /** For Fastify's `schemaController.compilersFactory`. */
  readonly compilersFactory = {
    buildValidator: this.#lazy(defaultValidators(), (compile) => {
      let real: Validate | undefined;
      const validate = ((data: unknown) => {
        real ??= compile();
        return real(data);
      }) as Validate;
      // Fastify reads the errors of the last call from the function itself.
      Object.defineProperty(validate, 'errors', { get: () => real?.errors });
      const force = () => {
        real ??= compile();
      };
      return { fn: validate, force };
    }),
    buildSerializer: this.#lazy(defaultSerializers(), (compile) => {
      let real: Serialize | undefined;
      const serialize: Serialize = (data) => {
        real ??= compile();
        return real(data);
      };
      const force = () => {
        real ??= compile();
      };
      return { fn: serialize, force };
    }),
  };

  /** Compiles every schema not compiled yet; throws what the first one that fails throws. */
  compileAll(): number {
    let n = 0;
    for (const force of this.#pending) {
      this.#pending.delete(force);
      force();
      n++;
    }
    return n;
  }

  #lazy<F>(factory: Factory<F>, wrap: (compile: () => F) => { fn: F; force: () => void }): Factory<F> {
    return (externalSchemas, options) => {
      const compiler = factory(externalSchemas, options);
      return (route) => {
        const { fn, force } = wrap(() => {
          this.#pending.delete(force);
          return compiler(route);
        });
        this.#pending.add(force);
        return fn;
      };
    };
  }
}
