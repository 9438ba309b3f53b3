/** Helpers shared by commands: counting unparseable entries, example lines for `--help`. */
import type { ListedCheckpoint } from "../index.js";

/** How many entries of a listing cannot be parsed. */
export function corruptCount(listing: readonly ListedCheckpoint[]): number {
  return listing.filter((e) => !e.ok).length;
}

/** Example lines for a command's `--help`. */
export function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? "s" : ""}:\n${lines.map((l) => `  $ ${l}`).join("\n")}`;
}
