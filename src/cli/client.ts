/** The HTTP client every `ferry` client command uses; it knows the server only by its API. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; type?: string } | null,
  ) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.name = 'ApiError';
  }
}

export class ServerUnreachable extends Error {
  constructor(server: string, cause: unknown) {
    const { why, hint } = explain(server, cause);
    super(`cannot reach Ferry at ${server}: ${why}\n${hint}`);
    this.name = 'ServerUnreachable';
  }
}

/** The innermost error: fetch() wraps the socket's ("fetch failed"), which holds the useful code. */
function rootOf(err: unknown): { code?: string; message?: string; name?: string } | undefined {
  let e = err as { cause?: unknown; code?: string; message?: string; name?: string } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return e;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS|ERR_SSL|EPROTO|HOSTNAME_MISMATCH/;

/** Why the server could not be reached, in words, and what to do about it. */
function explain(server: string, err: unknown): { why: string; hint: string } {
  const e = rootOf(err);
  const code = e?.code ?? '';
  const host = URL.canParse(server) ? new URL(server).hostname : server;
  const check = 'check --server, $FERRY_SERVER or the server of your last `ferry login`';
  if (e?.name === 'TimeoutError')
    return {
      why: 'no answer within 30 s',
      hint: `hint: is the server overloaded or behind a firewall? ${check}`,
    };
  if (code === 'ECONNREFUSED')
    return {
      why: 'connection refused (ECONNREFUSED): nothing listens on that port',
      hint: `hint: start the server (ferry serve) or ${check}`,
    };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return {
      why: `the name ${host} does not resolve (DNS ${code})`,
      hint: `hint: check the spelling and your network or VPN; ${check}`,
    };
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return {
      why: `the connection was closed (${code})`,
      hint: 'hint: an https:// server answered plain http (or the other way round)? a proxy in between?',
    };
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT')
    return { why: `no route to ${host} (${code})`, hint: 'hint: check your network or VPN' };
  if (/wrong version number|packet length too long/i.test(e?.message ?? ''))
    return {
      why: `TLS failed: the server there does not speak TLS (${code || e?.message})`,
      hint: 'hint: use http:// for this server, or the port where it serves https',
    };
  if (TLS_CODES.test(code) || /certificate|TLS|SSL/i.test(e?.message ?? ''))
    return {
      why: `TLS failed: ${e?.message ?? code}${code && !(e?.message ?? '').includes(code) ? ` (${code})` : ''}`,
      hint: `hint: if ${host} uses your own certificate authority, point NODE_EXTRA_CA_CERTS at its PEM file; if the name differs from the certificate's, use the name the certificate holds`,
    };
  return { why: code || e?.message || String(err), hint: `hint: ${check}` };
}

export interface ClientOptions {
  server: string;
  /** a bearer token, or how to get one when the first request is made */
  token?: string | (() => Promise<string>);
  /** the error for a 401 (the signed-in person's token refused: say how to sign in again) */
  unauthorized?: () => Error;
}

export class FerryClient {
  constructor(private readonly options: ClientOptions) {}

  get server(): string {
    return this.options.server;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, this.options.server), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new ServerUnreachable(this.options.server, err);
    }
    const text = await res.text();
    const parsed = text ? safeJson(text) : null;
    if (res.status === 401 && this.options.unauthorized) throw this.options.unauthorized();
    if (!res.ok) throw new ApiError(res.status, parsed as { title?: string; detail?: string } | null);
    return parsed as T;
  }

  /**
   * A POST whose answer is NDJSON (a long-running operation reporting progress): each line is
   * handed to `onLine` as it arrives. No overall timeout, since the server keeps writing.
   */
  async streamLines(
    path: string,
    onLine: (value: unknown) => void,
    method: 'GET' | 'POST' = 'POST',
  ): Promise<void> {
    const headers: Record<string, string> = { accept: 'application/x-ndjson' };
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(new URL(path, this.options.server), { method, headers });
    } catch (err) {
      throw new ServerUnreachable(this.options.server, err);
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      throw new ApiError(
        res.status,
        (text ? safeJson(text) : null) as { title?: string; detail?: string } | null,
      );
    }
    const decoder = new TextDecoder();
    let buffered = '';
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) onLine(safeJson(line));
        nl = buffered.indexOf('\n');
      }
    }
    if (buffered.trim()) onLine(safeJson(buffered.trim()));
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** A plain-text resource (ca.pub, known_hosts). */
  async text(path: string): Promise<string> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.options.server), { signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      throw new ServerUnreachable(this.options.server, err);
    }
    const text = await res.text();
    if (!res.ok) throw new ApiError(res.status, safeJson(text) as { title?: string; detail?: string } | null);
    return text;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 200) };
  }
}
