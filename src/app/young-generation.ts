import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** Each of the young generation's two semi-spaces stops growing at this size (V8's own limit is 16 MiB). */
export const SERVE_SEMI_SPACE_MIB = 4;

/** True when the operator chose the young generation's size themselves (node flags or NODE_OPTIONS). */
function chosenByOperator(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => /semi[-_]space/.test(a));
}

/**
 * Stops V8's young generation from growing past SERVE_SEMI_SPACE_MIB per semi-space (at most one
 * doubling more, see below) in `ferry serve`
 * (ADR 0054). V8 doubles the semi-spaces whenever many objects survive a scavenge, and starting Ferry
 * (loading modules) makes it grow to its 16 MiB limit: 32 MiB of from- and to-space that stay resident
 * for the life of the process, a fifth of its memory, while serving requests allocates short-lived
 * objects that a 4 MiB semi-space collects as well.
 *
 * `--max-semi-space-size` is read only when V8 sets up its heap, which is before any JavaScript runs,
 * so it cannot be set from here. The growth factor is read at each growth: once the semi-spaces have
 * reached the cap, growth by a factor of 1 keeps them there. An operator's own
 * `--max-semi-space-size` (or growth factor) wins: then this does nothing.
 */
export function capYoungGeneration(
  options: { semiSpaceMiB?: number; execArgv?: readonly string[]; nodeOptions?: string } = {},
): void {
  if (chosenByOperator(options.execArgv ?? process.execArgv, options.nodeOptions ?? process.env.NODE_OPTIONS))
    return;
  // new_space's size counts both semi-spaces
  const capBytes = 2 * (options.semiSpaceMiB ?? SERVE_SEMI_SPACE_MIB) * 1024 * 1024;
  const newSpaceBytes = () =>
    v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? capBytes;
  const at = newSpaceBytes();
  if (at >= capBytes) {
    v8.setFlagsFromString('--semi-space-growth-factor=1');
    return;
  }
  // The next growth goes straight to the cap; after it, none. Observers hear of a collection only
  // after it, so one more growth may slip in first: the semi-spaces end at the cap or twice it.
  v8.setFlagsFromString(`--semi-space-growth-factor=${Math.ceil(capBytes / at)}`);
  const observer = new PerformanceObserver(() => {
    if (newSpaceBytes() === at) return;
    v8.setFlagsFromString('--semi-space-growth-factor=1');
    observer.disconnect();
  });
  observer.observe({ entryTypes: ['gc'] });
}
