/**
 * A progress line for long operations (`validating 120/4000 checkpoints…`), redrawn in place
 * with `\r` on stderr. It is drawn only when stderr is a terminal and `--json` is off: logs,
 * pipes and scripts get nothing, so their output stays exactly the command's result.
 */

/** The part of a stream the progress line needs (a TTY `WriteStream`, or a fake in tests). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/** A line redrawn in place; every method is a no-op when the line is disabled. */
export class ProgressLine {
  /** False when nothing is ever drawn (not a terminal, or `--json`). */
  readonly enabled: boolean;
  private lastDraw = 0;
  private shown = false;

  constructor(
    private readonly stream: ProgressStream = process.stderr,
    json = false,
    // Redrawing on every item would make a fast operation spend its time painting the terminal.
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {
    this.enabled = stream.isTTY === true && !json;
  }

  /** Shows `label done/total unit…`; throttled, except the first and the last step. */
  count(label: string, done: number, total: number, unit: string): void {
    if (!this.enabled) return;
    const force = !this.shown || done >= total;
    this.show(`${label} ${done}/${total} ${unit}…`, force);
  }

  /** Shows `text` in place of the previous line; throttled unless `force`. */
  show(text: string, force = false): void {
    if (!this.enabled) return;
    const now = this.now();
    if (!force && now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    // A line wider than the terminal wraps, and `\r` then only returns to its last row. (A size
    // of 0 means unknown, as under `script`.)
    const width = Math.max(10, (this.stream.columns || 80) - 1);
    const line = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    this.stream.write(`\r${line}\x1b[K`);
    this.shown = true;
  }

  /** Erases the line, so the command's own output starts on a clean line. */
  clear(): void {
    if (!this.enabled || !this.shown) return;
    this.stream.write("\r\x1b[K");
    this.shown = false;
  }
}

/** A progress line on stderr for a command's flags. */
export function progressFor(
  flags: { json?: boolean },
  stream: ProgressStream = process.stderr,
): ProgressLine {
  return new ProgressLine(stream, flags.json === true);
}

/** Runs `task` with a progress line, erasing it afterwards whatever happens. */
export async function withProgress<T>(
  flags: { json?: boolean },
  task: (progress: ProgressLine) => Promise<T>,
): Promise<T> {
  const progress = progressFor(flags);
  try {
    return await task(progress);
  } finally {
    progress.clear();
  }
}
