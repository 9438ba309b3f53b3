/** Printing helpers: aligned tables, times, JSON documents, and error reports on stderr. */
import { formatBytes } from "../manager/chain-text.js";
import { CommandExit } from "./exit-codes.js";

export { formatBytes };

/** Column alignment of {@link formatTable}. */
export type Align = "left" | "right";

/** Lays rows out in columns padded to the widest cell, under a header row. */
export function formatTable(
  headers: readonly string[],
  rows: readonly string[][],
  align: Align[] = [],
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        return align[i] === "right" ? cell.padStart(width) : cell.padEnd(width);
      })
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** A timestamp for tables: `2024-01-01 12:00:00Z`, or `-` when there is none. */
export function formatTime(date: Date | undefined): string {
  return date
    ? date
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z")
    : "-";
}

/** Prints text on stdout, ending it with exactly one newline. */
export function printText(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/**
 * Prints one JSON document on stdout. Dates become ISO strings (via `toJSON`); `undefined`
 * becomes `null` so every document of a kind has the same keys.
 */
export function printJson(data: unknown): void {
  const text = JSON.stringify(data, (_key, value: unknown) => (value === undefined ? null : value), 2);
  process.stdout.write(`${text}\n`);
}

/** Prints a warning on stderr, where it never mixes with `--json` output. */
export function warn(message: string): void {
  process.stderr.write(`cairn: warning: ${message}\n`);
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Reports an error on stderr as `cairn: <message> (<code>)`; stack traces only with `CAIRN_DEBUG=1`. */
export function reportError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof CommandExit ? undefined : errorCode(error);
  process.stderr.write(`cairn: ${message}${code ? ` (${code})` : ""}\n`);
  if (process.env.CAIRN_DEBUG === "1" && error instanceof Error) {
    let current: unknown = error;
    while (current instanceof Error) {
      process.stderr.write(`${current.stack ?? current.message}\n`);
      current = current.cause;
      if (current !== undefined) process.stderr.write("Caused by: ");
    }
    if (current !== undefined) process.stderr.write(`${String(current)}\n`);
  }
}
