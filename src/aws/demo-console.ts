import { AssumeRoleWithSAMLCommand, STSClient } from '@aws-sdk/client-sts';
import fastifyFormbody from '@fastify/formbody';
import type { FastifyPluginAsync } from 'fastify';
import { html, PAGE_CSP, page } from '../identity/pages/html.js';

/** Where the demo's AWS console SAML responses are posted instead of https://signin.aws.amazon.com/saml. */
export const DEMO_CONSOLE_PATH = '/demo/aws-console';

export interface DemoConsoleOptions {
  /** the local AWS (moto) */
  endpoint: string;
  region: string;
}

const ROLE_ATTRIBUTE = 'https://aws.amazon.com/SAML/Attributes/Role';

/** The `role-arn,provider-arn` pairs of AWS's Role attribute (the response is not trusted here: STS checks it). */
export function rolePairsOf(samlResponse: string): Array<{ roleArn: string; principalArn: string }> {
  const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
  const attr = xml.match(
    new RegExp(`<(?:\\w+:)?Attribute[^>]*Name="${ROLE_ATTRIBUTE}"[^>]*>([\\s\\S]*?)</(?:\\w+:)?Attribute>`),
  );
  if (!attr) return [];
  const values = [...attr[1]!.matchAll(/<(?:\w+:)?AttributeValue[^>]*>([^<]*)</g)].map((m) => m[1]!.trim());
  return values.flatMap((v) => {
    const [a, b] = v.split(',');
    if (!a || !b) return [];
    // AWS accepts either order: the role ARN is the one with :role/.
    return a.includes(':role/') ? [{ roleArn: a, principalArn: b }] : [{ roleArn: b, principalArn: a }];
  });
}

/**
 * A stand-in for the AWS console's SAML sign-in, for the demo only: the local AWS has no console, so
 * this page takes the posted SAMLResponse, calls the local AWS's AssumeRoleWithSAML exactly as AWS's
 * sign-in does, and shows the role session it got. Not registered outside `npm run demo`.
 */
export const demoConsole: FastifyPluginAsync<DemoConsoleOptions> = async (app, opts) => {
  await app.register(fastifyFormbody, { bodyLimit: 256 * 1024 });
  const sts = new STSClient({
    region: opts.region,
    endpoint: opts.endpoint,
    credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' },
    maxAttempts: 1,
  });
  const send = (status: number, title: string, body: ReturnType<typeof html>) => ({
    status,
    body: page(title, body),
  });

  app.post<{ Body: Record<string, string | undefined> }>(
    DEMO_CONSOLE_PATH,
    { schema: { hide: true }, bodyLimit: 256 * 1024 },
    async (req, reply) => {
      const samlResponse = String(req.body?.SAMLResponse ?? '');
      const pairs = samlResponse ? rolePairsOf(samlResponse) : [];
      let result: { status: number; body: string };
      if (pairs.length === 0) {
        result = send(
          400,
          'Not a sign-in',
          html`<h1>No SAML response</h1><p>This page takes the AWS console sign-in Ferry posts.</p>`,
        );
      } else {
        const { roleArn, principalArn } = pairs[0]!;
        try {
          const out = await sts.send(
            new AssumeRoleWithSAMLCommand({
              RoleArn: roleArn,
              PrincipalArn: principalArn,
              SAMLAssertion: samlResponse,
            }),
          );
          result = send(
            200,
            'AWS console (demo)',
            html`<h1>AWS console (demo stand-in)</h1>
<p class="notice" role="status">The local AWS accepted Ferry's SAML response: you are signed in to AWS as this role session.</p>
<dl id="role-session">
<dt>Role</dt><dd id="assumed-role">${out.AssumedRoleUser?.Arn ?? ''}</dd>
<dt>Session (source identity)</dt><dd id="source-identity">${out.SourceIdentity ?? '—'}</dd>
<dt>Access key</dt><dd><code id="access-key-id">${out.Credentials?.AccessKeyId ?? ''}</code></dd>
<dt>Expires</dt><dd id="expires">${out.Credentials?.Expiration?.toISOString() ?? ''}</dd>
<dt>Audience</dt><dd>${out.Audience ?? ''}</dd>
</dl>
<p class="muted">On real AWS this POST goes to https://signin.aws.amazon.com/saml and the browser lands in the AWS Management Console. The demo's local AWS (moto) has no console, so this page stands in for it.</p>
<p><a href="/">Back to Ferry</a></p>`,
          );
        } catch (err) {
          const e = err as { name?: string; message?: string };
          result = send(
            403,
            'AWS refused the sign-in',
            html`<h1>AWS refused the sign-in</h1><p role="alert">${e.name ?? 'Error'}: ${e.message ?? ''}</p><p><a href="/">Back to Ferry</a></p>`,
          );
        }
      }
      return reply
        .code(result.status)
        .type('text/html; charset=utf-8')
        .header('content-security-policy', PAGE_CSP)
        .header('cache-control', 'no-store')
        .send(result.body);
    },
  );
};
