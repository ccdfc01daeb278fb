/**
 * RFC 7807 problem details for the admin API. Modules throw a Problem (or a domain error that the
 * app maps to one); the body always has type, title, status and detail.
 */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

export const problemType = (code: string): string => `https://ferry.dev/problems/${code}`;

export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail?: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail ?? title);
    this.name = 'Problem';
  }

  body(instance?: string): ProblemBody {
    return {
      type: problemType(this.code),
      title: this.title,
      status: this.status,
      detail: this.message,
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export class Unauthorized extends Problem {
  constructor(detail = 'a valid bearer token is required') {
    super(401, 'unauthorized', 'Unauthorized', detail);
  }
}

export class Forbidden extends Problem {
  constructor(detail = 'not allowed') {
    super(403, 'forbidden', 'Forbidden', detail);
  }
}
