/**
 * A reader that goes away (`cairn run … | head -2`) closes stdout or stderr under a command.
 * That never ends the command: a run that stopped there would stay `in_progress` with its lease
 * held, and exit 0 would report success for work not done. Output to a closed stream is dropped,
 * the command finishes, and its exit code says how it went. Commands that only exist to print
 * (`monitor`) stop on {@link outputClosed}.
 */
const closed = new AbortController();

/** Aborted once stdout's reader has gone. */
export const outputClosed: AbortSignal = closed.signal;

/** Installs the handlers on stdout and stderr; any other stream error is thrown as before. */
export function dropOutputWhenClosed(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
      if (stream === process.stdout) closed.abort();
    });
  }
}
