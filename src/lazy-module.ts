import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package loaded at the first property read instead of at start (ADR 0046): for packages
 * only some requests or commands need, called from synchronous code (an `await import()` would do
 * elsewhere). Import only types from the package statically; take its values from here, e.g.
 * `new xmldom.DOMParser(…)`. An `import` of the same package elsewhere yields the same module object,
 * so classes stay the same for `instanceof`.
 */
export function onFirstUse<T extends object>(name: string): T {
  let loaded: T | undefined;
  return new Proxy({} as T, {
    get: (_, key) => {
      loaded ??= require(name) as T;
      return loaded[key as keyof T];
    },
  });
}
