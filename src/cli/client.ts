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
    super(`cannot reach Ferry at ${server} (${reasonOf(cause)})`);
    this.name = 'ServerUnreachable';
  }
}

/** fetch() wraps the socket error ("fetch failed"); the useful part is the innermost code or message. */
function reasonOf(err: unknown): string {
  let e = err as { cause?: unknown; code?: string; message?: string; name?: string } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  if (e?.name === 'TimeoutError') return 'no answer within 30 s';
  return e?.code ?? e?.message ?? String(err);
}

export interface ClientOptions {
  server: string;
  /** a bearer token, or how to get one when the first request is made */
  token?: string | (() => Promise<string>);
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
    if (!res.ok) throw new ApiError(res.status, parsed as { title?: string; detail?: string } | null);
    return parsed as T;
  }

  /**
   * A POST whose answer is NDJSON (a long-running operation reporting progress): each line is
   * handed to `onLine` as it arrives. No overall timeout, since the server keeps writing.
   */
  async streamLines(path: string, onLine: (value: unknown) => void): Promise<void> {
    const headers: Record<string, string> = { accept: 'application/x-ndjson' };
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(new URL(path, this.options.server), { method: 'POST', headers });
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
