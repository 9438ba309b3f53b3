/**
 * How the long-running commands (`monitor`, `watch`, `replicate`) stop: the first SIGINT or
 * SIGTERM asks for a clean stop, a second one exits at once (a read stuck on a slow store would
 * otherwise delay it), and a reader that went away (`cairn watch | head`) stops them too.
 */
import { outputClosed } from "./closed-output.js";
import { ExitCode } from "./exit-codes.js";

/** Options of {@link stopOnSignals}. */
export interface StopOptions {
  /** Also stop when nobody reads stdout any more. */
  whenOutputCloses?: boolean;
  /** Runs before a second signal exits (e.g. showing the terminal's cursor again). */
  beforeExit?: () => void;
}

/** Aborts `stop` on the first signal (and on a closed stdout if asked); returns the undo. */
export function stopOnSignals(stop: AbortController, options: StopOptions = {}): () => void {
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) {
      options.beforeExit?.();
      process.exit(ExitCode.Interrupted);
    }
    stop.abort();
  };
  const onClosed = () => stop.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  if (options.whenOutputCloses) {
    outputClosed.addEventListener("abort", onClosed);
    if (outputClosed.aborted) stop.abort();
  }
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    outputClosed.removeEventListener("abort", onClosed);
  };
}
