import { Conflict, NotFound } from '../../errors.js';
import { PimForbidden, StepUpRequired } from './activations.js';
import { IllegalTransition } from './lifecycle.js';

/** The PIM domain's refusals as status, title and words for a page; null for anything unexpected. */
export function toProblemLike(err: unknown): { status: number; title: string; detail: string } | null {
  if (err instanceof IllegalTransition || err instanceof Conflict)
    return { status: 409, title: 'Already answered', detail: err.message };
  if (err instanceof PimForbidden || err instanceof StepUpRequired)
    return { status: 403, title: 'Not allowed', detail: err.message };
  if (err instanceof NotFound) return { status: 404, title: 'Not found', detail: err.message };
  return null;
}
