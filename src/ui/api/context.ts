/**
 * What every data function of the console's read side takes, and the small helpers they share:
 * opaque cursors, bounded integers, the URLs the pages follow. The functions return plain
 * JSON-able objects (dates as ISO strings); the HTTP layer maps their typed errors to statuses.
 */
import { InvalidArgumentError } from "../../core/errors.js";
import type { CheckpointManager } from "../../manager/checkpoint-manager.js";

/** The console's view of the store. */
export interface ApiContext {
  /** Opened on the user's store flags (including `--key-file`). */
  manager: CheckpointManager;
  /** Store flags to append to CLI commands shown on the pages, e.g. ` --store sqlite:./x.db`. */
  storeHint: string;
}

/** Values inlined in a page up to this many bytes of JSON; larger ones are fetched on demand. */
export const INLINE_LIMIT = 64 * 1024;

/** Longest value preview in a diff, in characters of JSON. */
export const PREVIEW_LIMIT = 200;

/** Encodes a cursor: base64url JSON, opaque to the page. */
export function encodeCursor(value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** Decodes a cursor {@link encodeCursor} made; anything else is `CAIRN_INVALID_ARGUMENT`. */
export function decodeCursor(cursor: string): Record<string, unknown> {
  const bad = () => new InvalidArgumentError("cursor is not one this console gave out");
  if (cursor.length === 0 || cursor.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw bad();
  return value as Record<string, unknown>;
}

/** An integer query value from `min` to `max`, `fallback` when absent. */
export function boundedInt(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = typeof value === "string" && /^\d{1,9}$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** The console's URL of a checkpoint resource; ids are URL-encoded even though names need not be. */
export function checkpointUrl(checkpointId: string, ...rest: string[]): string {
  return ["/api/checkpoints", checkpointId, ...rest]
    .map((p, i) => (i === 0 ? p : encodeURIComponent(p)))
    .join("/");
}

/** A date as ISO 8601, null when unknown. */
export function iso(date: Date | string | undefined | null): string | null {
  if (date === undefined || date === null) return null;
  return typeof date === "string" ? date : date.toISOString();
}

/** A short JSON rendering of a value (codec tags for what JSON cannot hold), ≤ {@link PREVIEW_LIMIT}. */
export function previewJson(value: unknown, render: (v: unknown) => string): unknown {
  const text = render(value);
  if (text.length <= PREVIEW_LIMIT) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return `${text.slice(0, PREVIEW_LIMIT - 1)}…`;
}
