/**
 * A promise and the function that settles it: one side of a test waits at `opened` (a holder kept
 * inside its work, an observer stopped mid-batch) until the other side calls `open`.
 */
export interface Gate {
  readonly opened: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}
