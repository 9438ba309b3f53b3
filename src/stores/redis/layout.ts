/**
 * The Redis store's layout version: `{prefix}layout`, a string ("2"), no TTL. It says how the
 * keys under the prefix are arranged (`keys.ts`), so that an older cairn facing keys a newer
 * cairn rearranged refuses them (`FormatTooNewError`) instead of misreading them. Read when the
 * store is set up, before anything else is read or written; a writer sets it with `SET NX`, so
 * it never replaces a newer cairn's value. Data an older cairn wrote has none until then, or
 * "1" (before the feed): setup() moves it to 2 in the script that creates the feed.
 */
import { CheckpointCorruptError, FormatTooNewError } from "../../core/errors.js";
import type { RedisClient } from "./config.js";
import type { RedisKeys } from "./keys.js";

/**
 * The layout this cairn writes and reads. 2: every change is also appended to the feed stream
 * (`feed.ts`) by the script that makes it. An older cairn would write without feeding, leaving
 * silent gaps a watcher or replicator could not detect, so it must refuse these keys.
 */
export const REDIS_LAYOUT_VERSION = 2;

/** Reads (and, unless `readOnly`, first sets when absent) the layout key, refusing a newer one. */
export async function checkLayout(client: RedisClient, keys: RedisKeys, readOnly: boolean): Promise<void> {
  if (!readOnly) await client.call("SET", keys.layout, String(REDIS_LAYOUT_VERSION), "NX");
  const value = await client.call("GET", keys.layout);
  if (value === null || value === undefined) return;
  const text = Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
  const layout = /^[1-9]\d{0,8}$/.test(text) ? Number(text) : undefined;
  if (layout === undefined) {
    throw new CheckpointCorruptError(
      undefined,
      `${keys.layout} holds no layout version: ${text.slice(0, 100)}`,
    );
  }
  if (layout > REDIS_LAYOUT_VERSION) {
    throw new FormatTooNewError("store layout", keys.layout, layout, REDIS_LAYOUT_VERSION);
  }
}
