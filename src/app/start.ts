import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { type Clock, systemClock } from '../clock.js';
import { OIDC_SIGNING_PURPOSES } from '../federation/oidc/provider.js';
import { rekeyLegacyHashes } from '../identity/secrets.js';
import type { SigningKeysOptions } from '../keys/signing-keys.js';
import { migrateToLatest } from '../store/migrate.js';
import { openStore, redactUrl } from '../store/open.js';
import type { Config } from './config.js';
import { describeFileModeProblem, fileModeProblems } from './file-modes.js';
import { defaultHandlers, mergeHandlers } from './handlers.js';
import { loadMasterKey } from './master-key.js';
import { createProxy } from './proxy.js';
import { buildServer, readTlsFiles, type ServerOptions } from './server.js';
import { createServices, type Services } from './services.js';
import { type EventHandlers, startWorkers, type Workers } from './workers.js';

export interface RunningFerry {
  app: FastifyInstance;
  services: Services;
  workers: Workers;
  /** the address it listens on, e.g. http://127.0.0.1:7070 */
  url: string;
  /** the identity-aware proxy's listener, when `proxy.listen` is configured */
  proxyUrl: string | null;
  /** stops taking requests, lets in-flight ones finish, stops workers, closes the database */
  stop(): Promise<void>;
  /**
   * Reads `tls.certFile` and `tls.keyFile` again for new connections (SIGHUP); open connections keep
   * theirs. A pair that does not load is logged and the previous one stays in use. False without TLS.
   */
  reloadTls(): boolean;
}

export interface StartOptions {
  config: Config;
  configSource?: string;
  clock?: Clock;
  logger?: FastifyServerOptions['logger'];
  handlers?: EventHandlers;
  workerIntervalMs?: number;
  /** drain the outbox when an event is committed (default true; tests that drain by hand turn it off) */
  workerWake?: boolean;
  /** test seam: where new signing keys come from (default RSA-3072, generated on first start) */
  signingKeys?: SigningKeysOptions;
  /** routes only the demo serves, and where its AWS console responses go (see app/demo.ts) */
  demo?: Pick<ServerOptions, 'extraRoutes' | 'awsConsoleSigninUrl'>;
}

export function listenAddress(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/** Opens the database, migrates it, builds the server and starts listening and background work. */
export async function startFerry(options: StartOptions): Promise<RunningFerry> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const masterKey = loadMasterKey(config, options.configSource ?? 'configuration');
  let app: FastifyInstance | undefined;
  const store = openStore(config.database.url, {
    poolSize: config.database.poolSize,
    onIdleError: (err) => app?.log.warn({ err: err.message }, 'database connection lost'),
    // Once when writes start failing for lack of space, once when they work again (issue 16 point 5).
    onWriteCondition: (c) =>
      c.ok
        ? app?.log.warn('database writes work again; ready')
        : app?.log.error({ cause: c.cause, since: c.since }, 'database out of space: writes answer 503'),
  });
  try {
    await migrateToLatest(store);
    await rekeyLegacyHashes(store, masterKey);
  } catch (err) {
    await store.close();
    throw err;
  }
  const services = createServices(config, store, clock, masterKey, options.signingKeys);
  let shadowedSinks: Array<{ name: string; createdBy: string }> = [];
  try {
    // Every instance makes sure its signing keys exist; concurrent starts end with exactly one each.
    await Promise.all([
      ...(['saml', ...OIDC_SIGNING_PURPOSES] as const).map((purpose) =>
        services.signingKeys.ensureCurrent(purpose),
      ),
      services.auditKeys.current(),
    ]);
    // Alert sinks declared in the config file, secrets read from their references and sealed.
    shadowedSinks = (await services.alertSinks.syncFromConfig(config.alerts.sinks)).shadowed;
  } catch (err) {
    await store.close();
    throw err;
  }
  app = await buildServer(services, { logger: options.logger, ...options.demo });
  for (const sink of shadowedSinks)
    app.log.warn(
      { sink: sink.name, createdBy: sink.createdBy },
      'alerts.sinks declares a sink whose name an alert sink added through the API or CLI holds: the config sink is not applied (remove or rename one of them; /readyz lists it)',
    );
  for (const problem of fileModeProblems(config)) {
    app.log.warn({ path: problem.path, mode: problem.mode.toString(8) }, describeFileModeProblem(problem));
  }
  const handlers = mergeHandlers(defaultHandlers(services), options.handlers ?? {});
  const workers = startWorkers(services, handlers, app.log, {
    intervalMs: options.workerIntervalMs,
    wake: options.workerWake,
  });
  const { host, port } = listenAddress(config.listen);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await workers.stop();
    await store.close();
    throw err;
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const url = `${config.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  app.log.info({ url, database: redactUrl(config.database.url), engine: store.engine }, 'ferry listening');
  const proxy = config.proxy.listen ? createProxy(services, app.log.child({ component: 'proxy' })) : null;
  let proxyUrl: string | null = null;
  if (proxy && config.proxy.listen) {
    const at = listenAddress(config.proxy.listen);
    try {
      const bound = await proxy.listen(at.host, at.port);
      proxyUrl = `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${bound.port}`;
    } catch (err) {
      await app.close();
      await workers.stop();
      await store.close();
      throw err;
    }
    app.log.info({ url: proxyUrl }, 'identity-aware proxy listening');
  }
  let stopping: Promise<void> | undefined;
  return {
    app,
    services,
    workers,
    url,
    proxyUrl,
    reloadTls() {
      if (!config.tls) return false;
      try {
        (app.server as unknown as TlsServer).setSecureContext(readTlsFiles(config.tls));
        app.log.info({ certFile: config.tls.certFile }, 'TLS certificate reloaded');
        return true;
      } catch (err) {
        app.log.error(
          { err, certFile: config.tls.certFile },
          'TLS certificate reload failed; keeping the previous one',
        );
        return false;
      }
    },
    stop() {
      stopping ??= (async () => {
        await proxy?.close();
        // server.close() ends only the keep-alive connections idle at that moment; one whose request
        // was in flight stayed open after its response (up to keepAliveTimeout, 72 s) and held the
        // exit back. Close such connections as soon as their last response is sent.
        const reaper = setInterval(() => app.server.closeIdleConnections(), 100);
        try {
          await app.close();
        } finally {
          clearInterval(reaper);
        }
        await workers.stop();
        // The AWS SDK clients' keep-alive sockets would otherwise hold the process open.
        services.identityCenterClients.destroy();
        services.sessionRevoker.close();
        await store.close();
      })();
      return stopping;
    },
  };
}
