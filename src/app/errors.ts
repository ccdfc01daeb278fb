import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Conflict, InvalidInput, NotFound } from '../errors.js';
import { errorPage } from '../identity/pages/html.js';
import { PasswordPolicyViolation, SigninBusy } from '../identity/passwords.js';
import { Problem } from '../problem.js';
import { DatabaseUnavailable, isDatabaseUnavailable, isStorageFull } from '../store/errors.js';

/** Maps any thrown error to an RFC 7807 problem; unknown errors are logged and become a bare 500. */
export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  if (err instanceof NotFound) return new Problem(404, 'not-found', 'Not Found', err.message);
  if (err instanceof Conflict) return new Problem(409, 'conflict', 'Conflict', err.message);
  if (err instanceof InvalidInput) {
    return new Problem(
      400,
      'invalid-input',
      'Invalid input',
      err.message,
      err.field ? { field: err.field } : {},
    );
  }
  if (err instanceof PasswordPolicyViolation) {
    return new Problem(400, 'password-policy', 'Password rejected', err.message, { field: 'password' });
  }
  if (err instanceof SigninBusy) {
    return new Problem(503, err.code, 'Service Unavailable', err.message);
  }
  if (err instanceof DatabaseUnavailable || isDatabaseUnavailable(err)) {
    return new Problem(
      503,
      'unavailable',
      'Service Unavailable',
      isStorageFull(err)
        ? 'the database has no room to write (disk full); retry shortly'
        : 'the database is unreachable; retry shortly',
    );
  }
  const fe = err as Partial<FastifyError>;
  if (fe.validation) {
    return new Problem(400, 'invalid-request', 'Invalid request', fe.message, {
      errors: fe.validation.map((v) => ({
        // name the offending member, also when it sits inside a nested object ("/emails/0/primery")
        path:
          [v.instancePath, v.params?.missingProperty ?? v.params?.additionalProperty]
            .filter(Boolean)
            .join('/') || undefined,
        message: v.message,
      })),
    });
  }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413)
    return new Problem(413, 'payload-too-large', 'Payload Too Large', 'the request body is too large');
  if (status === 415) return new Problem(415, 'unsupported-media-type', 'Unsupported Media Type', fe.message);
  if (status >= 400 && status < 500) return new Problem(status, 'bad-request', 'Bad Request', fe.message);
  return new Problem(500, 'internal', 'Internal Server Error', 'an unexpected error occurred');
}

const wantsHtml = (req: FastifyRequest): boolean =>
  !req.url.startsWith('/api/') &&
  !req.url.startsWith('/scim/') &&
  (req.headers.accept ?? '').includes('text/html');

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const problem = toProblem(err);
  if (err instanceof SigninBusy) {
    // Expected under a flood: one log line each would be the flood's amplifier; the metric counts them.
    reply.header('retry-after', String(err.retryAfterSeconds));
  } else if (problem.status >= 500) {
    // Out of space is logged once by the store (and its recovery), not once per refused request.
    if (!isStorageFull(err))
      req.log.error({ err }, problem.status === 503 ? 'database unavailable' : 'request failed');
    if (problem.status === 503) reply.header('retry-after', '5');
  }
  if (wantsHtml(req)) {
    return reply
      .code(problem.status)
      .type('text/html; charset=utf-8')
      .send(errorPage(problem.status, problem.title, problem.message));
  }
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .send(problem.body(req.url.split('?')[0]));
}

export function notFoundHandler(req: FastifyRequest, reply: FastifyReply) {
  const problem = new Problem(
    404,
    'not-found',
    'Not Found',
    `no route for ${req.method} ${req.url.split('?')[0]}`,
  );
  if (wantsHtml(req)) {
    return reply
      .code(404)
      .type('text/html; charset=utf-8')
      .send(errorPage(404, 'Not Found', 'There is no such page.'));
  }
  return reply.code(404).type('application/problem+json').send(problem.body());
}
