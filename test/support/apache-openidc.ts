import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { generateSelfSignedRsa } from '../../src/keys/self-signed-certificate.js';
import { freePort } from './process.js';

/** Debian's Apache httpd and mod_auth_openidc (packages apache2, libapache2-mod-auth-openidc). */
export const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';

export interface ApacheOpenidcOptions {
  /** Ferry's issuer (its public URL); discovery is read from there */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** the host name the browser uses for Apache (another origin than Ferry's) */
  host?: string;
  /** the port to listen on (a free one when left out; the client must be registered with it) */
  port?: number;
}

export interface ApacheOpenidc {
  /** e.g. http://localhost:41234 */
  origin: string;
  /** mod_auth_openidc's redirect URI: register it at Ferry */
  redirectUri: string;
  /** where logout returns: register it as a post_logout_redirect_uri */
  loggedOutUri: string;
  /** the URL that starts logout from the app (mod_auth_openidc's `?logout=`) */
  logoutUrl: string;
  /** everything Apache logged so far */
  log(): string;
  stop(): Promise<void>;
}

/**
 * The CGI page behind both protected locations: the request's identity as the app sees it
 * (REMOTE_USER, and every OIDC_CLAIM_* variable mod_auth_openidc set), as JSON.
 */
const ECHO_CGI = `#!/usr/bin/python3
import json, os
seen = {k: v for k, v in os.environ.items() if k == 'REMOTE_USER' or k.startswith('OIDC_CLAIM_') or k == 'AUTH_TYPE'}
print('Content-Type: application/json')
print()
print(json.dumps(seen, sort_keys=True))
`;

/** A port free on 127.0.0.1, to register the client before Apache starts. */
export const apachePort = freePort;

/**
 * Starts Apache httpd with mod_auth_openidc as a relying party of Ferry, on loopback, from its own
 * configuration directory (never the system service):
 *
 * - /app/…      `AuthType openid-connect`: code flow with PKCE (S256), claims passed to the app
 *               as environment variables (`OIDCPassClaimsAs environment`) and shown by /app/whoami
 * - /api/…      `AuthType oauth20`: a bearer token, checked at Ferry's introspection endpoint
 * - /loggedout.html where RP-initiated logout comes back to
 */
export async function startApacheOpenidc(options: ApacheOpenidcOptions): Promise<ApacheOpenidc> {
  if (!existsSync(APACHE) || !existsSync(join(MODULES, 'mod_auth_openidc.so'))) {
    throw new Error(
      'Apache httpd with mod_auth_openidc is not installed (apt-get install apache2 libapache2-mod-auth-openidc)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-apache-'));
  // As root, Apache's children run as www-data: they must read the config dir and run the CGI.
  chmodSync(dir, 0o755);
  const port = options.port ?? (await freePort());
  const host = options.host ?? 'localhost';
  const origin = `http://${host}:${port}`;
  const issuer = options.issuer.replace(/\/+$/, '');
  writeFileSync(join(dir, 'whoami.cgi'), ECHO_CGI, { mode: 0o755 });
  writeFileSync(
    join(dir, 'loggedout.html'),
    '<!doctype html><title>Signed out</title><p id="apache-bye">Signed out of the app</p>\n',
  );
  const asRoot = process.getuid?.() === 0;
  // mod_auth_openidc accepts only an https introspection endpoint (a configuration error otherwise):
  // a TLS front with a throw-away certificate forwards to Ferry, as a load balancer would.
  const tlsFront = await startTlsFront(new URL(issuer));
  const conf = `# Written by test/support/apache-openidc.ts
ServerRoot ${dir}
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
LogLevel warn auth_openidc:info
Listen 127.0.0.1:${port}
ServerName ${host}
${asRoot ? 'User www-data\nGroup www-data' : ''}
DefaultRuntimeDir ${dir}
Mutex file:${dir}
LoadModule mpm_prefork_module ${MODULES}/mod_mpm_prefork.so
LoadModule authn_core_module ${MODULES}/mod_authn_core.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule authz_user_module ${MODULES}/mod_authz_user.so
LoadModule mime_module ${MODULES}/mod_mime.so
LoadModule alias_module ${MODULES}/mod_alias.so
LoadModule cgi_module ${MODULES}/mod_cgi.so
LoadModule auth_openidc_module ${MODULES}/mod_auth_openidc.so
StartServers 2
MinSpareServers 1
MaxSpareServers 4
TypesConfig /etc/mime.types
DocumentRoot ${dir}
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog ${dir}/access.log common

OIDCProviderMetadataURL ${issuer}/.well-known/openid-configuration
OIDCClientID ${options.clientId}
OIDCClientSecret ${options.clientSecret}
OIDCProviderTokenEndpointAuth client_secret_basic
OIDCRedirectURI ${origin}/app/redirect_uri
OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}
OIDCScope "openid profile email groups"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
OIDCPassClaimsAs environment
OIDCClaimPrefix OIDC_CLAIM_
OIDCClaimDelimiter ,
OIDCSessionInactivityTimeout 600

OIDCOAuthIntrospectionEndpoint ${tlsFront.url}/oidc/token/introspection
OIDCOAuthSSLValidateServer Off
OIDCOAuthClientID ${options.clientId}
OIDCOAuthClientSecret ${options.clientSecret}
OIDCOAuthIntrospectionEndpointAuth client_secret_basic
OIDCOAuthRemoteUserClaim sub

ScriptAlias /app/whoami ${dir}/whoami.cgi
ScriptAlias /api/whoami ${dir}/whoami.cgi
<Directory ${dir}>
  Require all granted
</Directory>
<Location /app>
  AuthType openid-connect
  Require valid-user
</Location>
<Location /api>
  AuthType oauth20
  Require valid-user
</Location>
`;
  const confFile = join(dir, 'httpd.conf');
  writeFileSync(confFile, conf);
  // Its own process group: on shutdown httpd signals its whole group, which would otherwise include
  // the test runner.
  const child: ChildProcess = spawn(APACHE, ['-f', confFile, '-DFOREGROUND'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, APACHE_RUN_DIR: dir, APACHE_LOCK_DIR: dir, APACHE_LOG_DIR: dir },
  });
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  const killOnExit = () => killGroup('SIGKILL');
  process.once('exit', killOnExit);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const log = () => {
    const errors = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
    return `${output}${errors}`;
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) killGroup('SIGKILL');
    }
    process.removeListener('exit', killOnExit);
    await tlsFront.close();
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when it answers the unprotected logout page.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      const text = log();
      await stop();
      throw new Error(`apache2 exited with ${child.exitCode}: ${text}`);
    }
    const ok = await fetch(`http://127.0.0.1:${port}/loggedout.html`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      const text = log();
      await stop();
      throw new Error(`apache2 did not answer within 20 s: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    origin,
    redirectUri: `${origin}/app/redirect_uri`,
    loggedOutUri: `${origin}/loggedout.html`,
    logoutUrl: `${origin}/app/redirect_uri?logout=${encodeURIComponent(`${origin}/loggedout.html`)}`,
    log,
    stop,
  };
}

/** A TLS listener on loopback that passes every connection through to `target` (plain HTTP). */
async function startTlsFront(target: URL): Promise<{ url: string; close(): Promise<void> }> {
  const { privateKeyPem, certificatePem } = await generateSelfSignedRsa({
    commonName: '127.0.0.1',
    modulusLength: 2048,
    notBefore: new Date(Date.now() - 60_000),
    validityYears: 1,
  });
  const open = new Set<{ destroy(): void }>();
  const server = createTlsServer({ key: privateKeyPem, cert: certificatePem }, (socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    open.add(socket);
    open.add(upstream);
    socket.pipe(upstream).pipe(socket);
    const end = () => {
      socket.destroy();
      upstream.destroy();
      open.delete(socket);
      open.delete(upstream);
    };
    socket.on('close', end);
    upstream.on('close', end);
    socket.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}`,
    // mod_auth_openidc keeps its connections alive: end them, or close() would wait for ever.
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
