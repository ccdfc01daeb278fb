/** A one-line progress bar on stderr, drawn only when stderr is a terminal (never in logs or pipes). */
export function progressBar(total: number, stream: NodeJS.WriteStream = process.stderr) {
  let done = 0;
  const tty = stream.isTTY === true;
  return {
    tick(label: string) {
      done = Math.min(total, done + 1);
      if (!tty) return;
      const width = 24;
      const filled = Math.round((width * done) / total);
      stream.write(
        `\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} ${label.slice(0, 50).padEnd(50)}`,
      );
    },
    end() {
      if (tty) stream.write('\n');
    },
  };
}
